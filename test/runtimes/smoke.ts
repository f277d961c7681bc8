/**
 * The library under another runtime (Bun, Deno) against a real server: migrate, elect, renew,
 * a NOTIFY handoff, stop; under Bun also through drizzle-orm/bun-sql. Run by
 * test/runtimes.test.ts as `<runtime> test/runtimes/smoke.ts <database url>`; prints one line
 * per check and a closing "N passed, N failed", and exits 1 on any failure.
 */
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { createElector, type Elector, getLeader, type LeaderDatabase, migrate, SILENT_LOGGER } from '../../src/index.js';

const url = process.argv[2];
if (!url) throw new Error('usage: smoke.ts <postgres url>');
const runtime = 'Bun' in globalThis ? 'bun' : 'Deno' in globalThis ? 'deno' : 'node';
const results: { name: string; error?: unknown }[] = [];

async function check(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
    results.push({ name });
    console.log(`ok   ${name}`);
  } catch (error) {
    results.push({ name, error });
    console.log(`FAIL ${name}: ${(error as Error)?.stack ?? error}`);
  }
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The cases every driver goes through; `label` names the driver in the output. */
async function suite(label: string, db: LeaderDatabase): Promise<void> {
  const name = `${runtime}-${label}-${Date.now()}`;
  const options = { name, ttl: 60_000, renewInterval: 20_000, safetyMargin: 1_000, logger: SILENT_LOGGER };
  const electors: Elector[] = [];
  const create = (id: string, extra: object = {}) => {
    const e = createElector(db, { ...options, id, ...extra });
    electors.push(e);
    return e;
  };
  try {
    await check(`${label}: migrate() is idempotent`, async () => {
      await migrate(db);
      await migrate(db);
    });
    await check(`${label}: elect: one leader of two`, async () => {
      const a = create('a');
      const b = create('b');
      await a.start();
      await b.start();
      assert(a.isLeader && !b.isLeader, `leaders: a=${a.isLeader} b=${b.isLeader}`);
    });
    await check(`${label}: renew: the lease moves forward`, async () => {
      const e = create('renewer', { name: `${name}-renew`, ttl: 1_500, renewInterval: 200, safetyMargin: 300 });
      await e.start();
      const first = (await getLeader(db, { name: `${name}-renew` }))!.expiresAt.getTime();
      await sleep(700);
      const later = (await getLeader(db, { name: `${name}-renew` }))!;
      assert(e.isLeader && later.expiresAt.getTime() > first, 'lease not renewed');
      assert(e.lease!.term === later.term, 'term changed');
    });
    await check(`${label}: NOTIFY handoff in milliseconds (60 s lease)`, async () => {
      const [a, b] = electors as [Elector, Elector];
      const started = performance.now();
      await a.stop();
      await b.waitForLeadership();
      const ms = performance.now() - started;
      console.log(`     handoff ${ms.toFixed(1)} ms`);
      assert(ms < 1_000, `handoff took ${ms} ms`);
    });
    await check(`${label}: stop() resigns and deletes the row`, async () => {
      const b = electors[1]!;
      await b.stop();
      assert(b.state === 'stopped', b.state);
      assert((await getLeader(db, { name })) === null, 'row left behind');
    });
  } finally {
    await Promise.all(electors.map((e) => e.stop()));
  }
}

const client = postgres(url, { max: 2, onnotice: () => {} });
await suite('drizzle-orm/postgres-js', drizzle(client) as unknown as LeaderDatabase);
await client.end({ timeout: 5 });

if (runtime === 'bun') {
  // Imported only under Bun: the module imports Bun's built-in `SQL`.
  const specifier = 'drizzle-orm/bun-sql';
  const { drizzle: drizzleBun } = (await import(specifier)) as typeof import('drizzle-orm/bun-sql');
  const bunDb = drizzleBun(url);
  const db = bunDb as unknown as LeaderDatabase;
  await check('drizzle-orm/bun-sql: transactions through Bun SQL', async () => {
    const rows = await bunDb.transaction(async (tx) => {
      await tx.execute('create temporary table smoke_tx (x int) on commit drop');
      await tx.execute('insert into smoke_tx values (1), (2)');
      return tx.execute('select count(*)::int as n from smoke_tx');
    });
    assert((rows as unknown as { n: number }[])[0]?.n === 2, `transaction saw ${JSON.stringify(rows)}`);
  });
  await suite('drizzle-orm/bun-sql', db);
  await (bunDb.$client as unknown as { close(o?: object): Promise<void> }).close({ timeout: 1 });
}

const failed = results.filter((r) => r.error).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
