/**
 * PGlite (`drizzle-orm/pglite`, Postgres in WASM) as a driver of its own: LISTEN through its
 * notification API, migrate() on its one session, statements on the instance itself, and what
 * an application transaction open on that instance does to them. The core elector cases run on
 * PGlite in test/elector.test.ts.
 */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createElector, type Elector, type LeaderDatabase, type Logger, MIGRATIONS_FOLDER, migrate } from '../src/index.js';
import { sleep } from './support/elector.js';
import { type PGliteConnection, pgliteConnection } from './support/pglite.js';

const electors: Elector[] = [];
const connections: PGliteConnection[] = [];
afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop()));
  await Promise.all(connections.splice(0).map((c) => c.close()));
});

async function open(options: { migrated?: boolean } = {}): Promise<PGliteConnection> {
  const conn = await pgliteConnection(options);
  connections.push(conn);
  return conn;
}

function create(db: LeaderDatabase, options: Parameters<typeof createElector>[1]): Elector {
  const elector = createElector(db, options);
  electors.push(elector);
  return elector;
}

function recordingLogger() {
  const lines: string[] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (_f, message) => void lines.push(message),
    error: (_f, message) => void lines.push(message),
  };
  return { logger, lines };
}

const shipped = readdirSync(resolve(MIGRATIONS_FOLDER)).filter((f) => f.endsWith('.sql')).length;

describe('migrate() on PGlite', () => {
  it('applies every shipped migration, once, when called concurrently on one instance', async () => {
    const conn = await open({ migrated: false });
    await Promise.all(Array.from({ length: 5 }, () => migrate(conn.db)));
    const journal = await conn.query<{ n: number }>('select count(*)::int as n from drizzle.__drizzle_leader_migrations');
    expect(journal[0]!.n).toBe(shipped);
    expect(shipped).toBe(readdirSync(join(MIGRATIONS_FOLDER)).filter((f) => f.endsWith('.sql')).length);
    const [table] = await conn.query<{ t: string | null }>(`select to_regclass('public.river_leader')::text as t`);
    expect(table!.t).toBe('river_leader');
    // Up to date: a second round sends no DDL (the journal is unchanged).
    await migrate(conn.db);
    expect((await conn.query<{ n: number }>('select count(*)::int as n from drizzle.__drizzle_leader_migrations'))[0]!.n).toBe(shipped);
  });

  it('a failing migrate() does not block the next one on the same instance', async () => {
    const conn = await open({ migrated: false });
    // River's own table (no term column): migrate() refuses it with a typed error.
    await conn.query(
      'create table river_leader (name text primary key, leader_id text not null, elected_at timestamptz not null, expires_at timestamptz not null)',
    );
    await expect(migrate(conn.db)).rejects.toMatchObject({ name: 'LeaseTableMismatchError' });
    await conn.query('drop table river_leader');
    await migrate(conn.db);
    const [table] = await conn.query<{ t: string | null }>(`select to_regclass('public.river_leader')::text as t`);
    expect(table!.t).toBe('river_leader');
  });
});

describe('electors on PGlite', () => {
  it('LISTEN works: no poll-only warning, and a graceful handoff takes milliseconds, not the 60 s lease', async () => {
    const conn = await open();
    const { logger, lines } = recordingLogger();
    const options = { name: 'handoff', ttl: 60_000, renewInterval: 20_000, safetyMargin: 1_000, logger };
    const leader = create(conn.db, { ...options, id: 'leader' });
    const follower = create(conn.db, { ...options, id: 'follower' });
    await leader.start();
    await follower.start();
    expect(leader.isLeader).toBe(true);
    expect(follower.isLeader).toBe(false);
    const started = performance.now();
    await leader.stop();
    const lease = await follower.waitForLeadership();
    const elapsed = performance.now() - started;
    expect(elapsed).toBeLessThan(1_000);
    expect(lease.leaderId).toBe('follower');
    expect(lines).toEqual([]);
  });

  it("the application's own pg.listen on the same channel keeps hearing after the electors stop", async () => {
    const conn = await open();
    const heard: string[] = [];
    await conn.pg.listen('river_leadership', (payload) => void heard.push(payload));
    const e = create(conn.db, { name: 'shared-channel' });
    await e.start();
    await e.stop();
    await sleep(300); // the notifier's LISTEN session closes a moment after the last elector leaves
    await conn.query(`select pg_notify('river_leadership', 'app-payload')`);
    await sleep(50);
    expect(heard).toContain('app-payload');
  });

  it('a channel with capitals and quotes is LISTENed to as spelled', async () => {
    const conn = await open();
    const options = { name: 'odd-channel', channel: 'Ops "Leaders"', ttl: 60_000, renewInterval: 20_000, safetyMargin: 1_000 };
    const leader = create(conn.db, { ...options, id: 'leader' });
    const follower = create(conn.db, { ...options, id: 'follower' });
    await leader.start();
    await follower.start();
    const started = performance.now();
    await leader.stop();
    await follower.waitForLeadership();
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('an open application transaction delays election statements but never contains them', async () => {
    const conn = await open();
    const e = create(conn.db, { name: 'behind-tx', id: 'elector' });
    let startedAt = 0;
    let settledAt = 0;
    let starting: Promise<void> = Promise.resolve();
    await conn.pg.transaction(async (tx) => {
      await tx.query('select 1');
      startedAt = performance.now();
      starting = e.start().then(() => {
        settledAt = performance.now();
      });
      await sleep(400);
      // Still waiting: PGlite runs one query at a time and this transaction holds the instance.
      expect(settledAt).toBe(0);
      await tx.rollback();
    });
    await starting;
    expect(e.isLeader).toBe(true);
    expect(settledAt - startedAt).toBeGreaterThanOrEqual(400);
    // The election ran after the rollback, outside it: its row is there.
    const rows = await conn.query<{ leader_id: string }>(`select leader_id from river_leader where name = 'behind-tx'`);
    expect(rows).toEqual([{ leader_id: 'elector' }]);
  });

  it('a transaction held past the trust window makes the leader step down (trust-expired), then it leads again', async () => {
    const conn = await open();
    const { logger, lines } = recordingLogger();
    const e = create(conn.db, { name: 'held', id: 'elector', ttl: 1_000, renewInterval: 100, safetyMargin: 200, logger });
    const lost: string[] = [];
    e.subscribe((event) => void (event.type === 'lost' && lost.push(event.reason)));
    await e.start();
    expect(e.isLeader).toBe(true);
    await conn.pg.transaction(async (tx) => {
      await tx.query('select 1');
      await sleep(1_200);
      expect(e.isLeader).toBe(false);
    });
    expect(lost[0]).toBe('trust-expired');
    // The renewal waited behind the transaction until its client-side deadline, and said so.
    expect(lines.some((line) => /renewal failed/.test(line))).toBe(true);
    await e.waitForLeadership();
    expect(e.isLeader).toBe(true);
  });

  it("a lease-checked transaction called inside the application's own transaction answers with DeadlineExceededError, not never", async () => {
    // PGlite runs one transaction at a time: the inner one can only begin after the outer one
    // ends, which waits for the inner one. The caller is answered at the deadline instead.
    const conn = await open();
    const e = create(conn.db, { name: 'nested-tx', id: 'elector', ttl: 2_000, renewInterval: 200, safetyMargin: 500 });
    await e.start();
    await e.transaction(async () => 'warm');
    const outcome = await conn.pg.transaction(async () =>
      Promise.race([
        e
          .transaction(async () => 'committed')
          .then(
            () => 'committed',
            (error: Error) => error.name,
          ),
        sleep(8_000).then(() => 'no answer in 8 s'),
      ]),
    );
    expect(outcome).toBe('DeadlineExceededError');
  });

  it('closing the instance under running electors: stop() still resolves within a ttl', async () => {
    const conn = await open();
    const { logger } = recordingLogger();
    const a = create(conn.db, { name: 'closed', id: 'a', ttl: 1_000, renewInterval: 200, safetyMargin: 200, logger });
    const b = create(conn.db, { name: 'closed', id: 'b', ttl: 1_000, renewInterval: 200, safetyMargin: 200, logger });
    await a.start();
    await b.start();
    await conn.pg.close();
    await sleep(300);
    const started = performance.now();
    await Promise.all([a.stop(), b.stop()]);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect([a.state, b.state]).toEqual(['stopped', 'stopped']);
  });
});
