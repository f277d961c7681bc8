/**
 * Lease-checked transactions (`elector.transaction`), in the bench's own process, on each
 * driver with interactive transactions:
 *
 * - cost: one small INSERT in `elector.transaction(fn)` against the same INSERT in
 *   `db.transaction(fn)`, interleaved one for one (the order alternating) so that the machine's
 *   noise falls on both alike; and the statements each sends, counted by the server;
 * - renewals under load: the renewal statement's latency (the `renewal` hook) while the leader
 *   runs lease-checked transactions back to back, each holding its lock ~50 ms, against the same
 *   elector idle, in alternating windows. A renewal that queued behind those locks would take
 *   tens of milliseconds.
 *
 * Also runs on its own: `tsx bench/lease-checked.ts [--quick | --smoke]` (embedded server, or DATABASE_URL).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { integer, pgTable, serial } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/postgres-js';
import pg from 'pg';
import postgres, { type Sql } from 'postgres';
import { createElector, type LeaderDatabase, migrate } from '../src/index.js';
import { type Distribution, distribution } from './stats.js';

export const LEASE_CHECKED_DRIVERS = ['postgres.js', 'node-postgres'] as const;
export type BenchDriver = (typeof LEASE_CHECKED_DRIVERS)[number];

/** How long each back-to-back transaction holds its lock in the renewal scenario. */
export const HOLD_MS = 50;

const writes = pgTable('bench_lease_checked', { id: serial('id').primaryKey(), v: integer('v').notNull() });

export interface LeaseCheckedPlan {
  /** Transactions of each kind in the cost comparison. */
  transactions: number;
  /** Alternating idle/busy windows in the renewal scenario, and the length of each. */
  windows: number;
  windowMs: number;
}

export interface LeaseCheckedResult {
  driver: BenchDriver;
  checked: Distribution;
  unchecked: Distribution;
  ratioP50: number;
  ratioP99: number;
  /** Statements per transaction by pg_stat_statements (BEGIN and COMMIT included); NaN without it. */
  statementsChecked: number;
  statementsUnchecked: number;
  renewInterval: number;
  renewalIdle: Distribution;
  renewalBusy: Distribution;
  /** Lease-checked transactions committed during the busy windows, and by how many concurrent loops. */
  busyTransactions: number;
  busyLoops: number;
  /** Renewals that did not succeed, and leaderships lost, over the whole scenario (both should be 0). */
  renewalsNotOk: number;
  leadershipsLost: number;
}

function open(driver: BenchDriver, url: string): { db: LeaderDatabase; close: () => Promise<void> } {
  if (driver === 'node-postgres') {
    const pool = new pg.Pool({ connectionString: url, max: 4, application_name: 'bench-lease-checked' });
    return { db: drizzlePg(pool) as unknown as LeaderDatabase, close: () => pool.end() };
  }
  const client = postgres(url, { max: 4, onnotice: () => {}, connection: { application_name: 'bench-lease-checked' } });
  return { db: drizzle(client) as unknown as LeaderDatabase, close: () => client.end({ timeout: 1 }) };
}

/** Calls of the statements these transactions send (BEGIN, the lock, the INSERT, COMMIT), by the server. */
async function statementCalls(admin: Sql): Promise<number> {
  const [row] = await admin<{ n: string | null }[]>`
    select sum(calls) as n from pg_stat_statements
    where dbid = (select oid from pg_database where datname = current_database())
      and (lower(trim(query)) in ('begin', 'commit') or query like '%bench_lease_checked%' or query like '%for key share%')
      and query not like '%pg_stat_statements%'`;
  return Number(row?.n ?? 0);
}

export async function leaseCheckedScenario(
  url: string,
  admin: Sql,
  driver: BenchDriver,
  plan: LeaseCheckedPlan,
  statementsAvailable: boolean,
): Promise<LeaseCheckedResult> {
  await admin`create table if not exists bench_lease_checked (id serial primary key, v integer not null)`;
  const { db, close } = open(driver, url);
  let phase: 'idle' | 'busy' | null = null;
  const renewals = { idle: [] as number[], busy: [] as number[] };
  let renewalsNotOk = 0;
  // A short renew interval, so each window holds enough renewals; the trust window (1.5 s)
  // is the lease-checked transactions' default timeout, far above their 50 ms.
  const renewInterval = 100;
  const elector = createElector(db, {
    name: `bench-lease-checked-${driver}-${Date.now()}`,
    ttl: 2_000,
    renewInterval,
    safetyMargin: 500,
    hooks: {
      renewal: (outcome, ms) => {
        if (outcome !== 'ok') renewalsNotOk++;
        else if (phase) renewals[phase].push(ms);
      },
    },
  });
  try {
    await elector.start();
    await elector.waitForLeadership();
    const insert = (tx: LeaderDatabase) => tx.insert(writes).values({ v: 1 });
    const checked = () => elector.transaction((tx) => insert(tx as LeaderDatabase));
    const unchecked = () => db.transaction((tx) => insert(tx as unknown as LeaderDatabase));
    const time = async (run: () => Promise<unknown>) => {
      const started = performance.now();
      await run();
      return performance.now() - started;
    };
    // Warm-up: connections opened, statements planned, before anything is timed.
    for (let i = 0; i < 10; i++) {
      await checked();
      await unchecked();
    }
    const samples = { checked: [] as number[], unchecked: [] as number[] };
    for (let i = 0; i < plan.transactions; i++) {
      if (i % 2 === 0) {
        samples.checked.push(await time(checked));
        samples.unchecked.push(await time(unchecked));
      } else {
        samples.unchecked.push(await time(unchecked));
        samples.checked.push(await time(checked));
      }
    }
    // Statements per transaction, counted apart from the timing (pg_stat_statements' own upkeep stays out of it).
    const per = async (run: () => Promise<unknown>) => {
      if (!statementsAvailable) return Number.NaN;
      const count = 20;
      const before = await statementCalls(admin);
      for (let i = 0; i < count; i++) await run();
      return ((await statementCalls(admin)) - before) / count;
    };
    const statementsChecked = await per(checked);
    const statementsUnchecked = await per(unchecked);

    const busyLoops = 2;
    let busyTransactions = 0;
    for (let w = 0; w < plan.windows; w++) {
      phase = 'idle';
      await sleep(plan.windowMs);
      phase = 'busy';
      const until = performance.now() + plan.windowMs;
      // Two loops, so that one transaction always holds the lock while the other starts.
      await Promise.all(
        Array.from({ length: busyLoops }, async () => {
          while (performance.now() < until) {
            await elector.transaction(async (tx) => {
              await insert(tx as LeaderDatabase);
              await sleep(HOLD_MS);
            });
            busyTransactions++;
          }
        }),
      );
    }
    phase = null;
    const checkedD = distribution(samples.checked);
    const uncheckedD = distribution(samples.unchecked);
    return {
      driver,
      checked: checkedD,
      unchecked: uncheckedD,
      ratioP50: checkedD.p50 / uncheckedD.p50,
      ratioP99: checkedD.p99 / uncheckedD.p99,
      statementsChecked,
      statementsUnchecked,
      renewInterval,
      renewalIdle: distribution(renewals.idle),
      renewalBusy: distribution(renewals.busy),
      busyTransactions,
      busyLoops,
      renewalsNotOk,
      leadershipsLost: elector.stats.leadershipsLost,
    };
  } finally {
    await elector.stop();
    await close();
  }
}

/** Plans by mode: [full, quick, smoke]. */
export function leaseCheckedPlan(mode: 'full' | 'quick' | 'smoke'): LeaseCheckedPlan {
  if (mode === 'full') return { transactions: 500, windows: 10, windowMs: 3_000 };
  if (mode === 'quick') return { transactions: 200, windows: 4, windowMs: 1_500 };
  return { transactions: 10, windows: 1, windowMs: 500 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, smoke: { type: 'boolean', default: false } } });
  const mode = values.smoke ? 'smoke' : values.quick ? 'quick' : 'full';
  const { startEmbeddedServer } = await import('../src/dev/embedded-server.js');
  const embedded = process.env.DATABASE_URL
    ? null
    : await startEmbeddedServer({ postgresFlags: ['-c', 'shared_preload_libraries=pg_stat_statements'] });
  const url = process.env.DATABASE_URL ?? embedded!.url;
  const admin = postgres(url, { max: 2, onnotice: () => {} });
  try {
    await migrate(drizzle(admin));
    const statementsAvailable = await admin`create extension if not exists pg_stat_statements`.then(
      () => true,
      () => false,
    );
    for (const driver of LEASE_CHECKED_DRIVERS) {
      console.log(JSON.stringify(await leaseCheckedScenario(url, admin, driver, leaseCheckedPlan(mode), statementsAvailable), null, 2));
    }
  } finally {
    await admin.end({ timeout: 1 });
    await embedded?.stop();
  }
}
