/**
 * The edges of issue 11, each reproduced as it was observed, with a fault proxy between an
 * elector and the test server where the fault is on the network: a shared node-postgres
 * Client, a partition inside a renewal transaction and inside an election, an operator's row
 * lock on one name, a silent or partitioned LISTEN connection, stop() under a partition, and
 * an abandoned renewal.
 */

import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createElectorWithStore, leaseStore } from '../../src/dev/testing.js';
import {
  CommitOutcomeUnknownError,
  createElector,
  createElectorGroup,
  type Elector,
  type ElectorError,
  InvalidOptionError,
  type LeaderDatabase,
  type LeaderInfo,
  LeadershipLostError,
  SILENT_LOGGER,
} from '../../src/index.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from '../support/db.js';
import { recorded, sleep } from '../support/elector.js';
import { FaultProxy } from './proxy.js';

const TIMING = { ttl: 1_500, renewInterval: 200, safetyMargin: 300 } as const;

let url: string;
let admin: Connection;
const proxies: FaultProxy[] = [];
const electors: Elector[] = [];
beforeAll(async () => {
  url = await createTestDatabase();
  admin = connect('postgres.js', url, { max: 3 });
});
afterAll(async () => {
  await Promise.all(electors.map((e) => e.stop()));
  await Promise.all(proxies.map((p) => p.close()));
  await admin.close();
});

/** A URL to the test database through a fault proxy of its own. */
async function proxied(): Promise<{ proxy: FaultProxy; url: string }> {
  const target = new URL(url);
  const proxy = new FaultProxy(target.hostname, Number(target.port));
  proxies.push(proxy);
  const through = new URL(url);
  through.port = String(await proxy.start());
  return { proxy, url: through.toString() };
}

const track = (elector: Elector) => recorded(elector, electors);

/** An expired lease row for `name`, held by an operator's open transaction until `release()`. */
async function operatorLocks(name: string): Promise<{ release(): Promise<void> }> {
  await admin.query(
    `insert into river_leader (name, leader_id, elected_at, expires_at) values ($1, 'gone', now(), now() - interval '1 second')`,
    [name],
  );
  const operator = new pg.Client({ connectionString: url });
  await operator.connect();
  await operator.query('begin');
  await operator.query('select * from river_leader where name = $1 for update', [name]);
  return {
    release: async () => {
      await operator.query('rollback');
      await operator.end();
    },
  };
}

const leaseRow = async (name: string) =>
  (await admin.query<{ leader_id: string; term: string }>('select leader_id, term::text from river_leader where name = $1', [name]))[0];

describe('issue 11.1: a node-postgres Client shared with the application', () => {
  it('elections never run inside the application transaction open on that Client, nor commit it', async () => {
    await admin.query('create table if not exists app_rows (id int)');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const db = drizzlePg(client) as unknown as LeaderDatabase;
    const name = 'shared-client';
    try {
      await client.query('begin');
      await client.query('insert into app_rows values (1)');
      const a = createElector(db, { name, id: 'a', ...TIMING });
      track(a);
      await a.start();
      expect(a.isLeader).toBe(true);
      await new Promise((r) => setTimeout(r, TIMING.renewInterval * 3)); // renewals happen meanwhile
      await client.query('rollback');
      // The lease is A's and committed: the rollback took nothing of it.
      expect((await leaseRow(name))?.leader_id).toBe('a');
      const b = createElector(connect('postgres.js', url).db, { name, id: 'b', ...TIMING });
      track(b);
      await b.start();
      expect(b.isLeader).toBe(false);
      expect(a.isLeader).toBe(true);
      // A renewal's COMMIT never committed the application's half-done transaction.
      expect(await admin.query('select * from app_rows')).toEqual([]);
    } finally {
      await client.end();
    }
  });

  it('refuses a transaction as the elector database, with a typed error', async () => {
    const conn = connect('postgres.js', url);
    try {
      await conn.db.transaction(async (tx) => {
        expect(() => createElector(tx as unknown as LeaderDatabase, { name: 'tx' })).toThrow(InvalidOptionError);
        expect(() => createElector(tx as unknown as LeaderDatabase, { name: 'tx' })).toThrow(/not a transaction/);
      });
    } finally {
      await conn.close();
    }
  });
});

describe.each(DRIVERS)('issue 11.2: bounded statements (%s)', (driver) => {
  it('a leader partitioned between its renewal UPSERT and COMMIT does not hold followers behind its row lock', async () => {
    const name = `commit-partition-${driver}`;
    const { proxy, url: through } = await proxied();
    // While A leads, the only statement that carries its id is its renewal UPSERT.
    const a = createElector(connect(driver, through).db, { name, id: 'renewing-leader-a', ...TIMING, listen: false });
    const b = createElector(connect(driver, url).db, { name, id: 'b', ...TIMING });
    track(a);
    const bEvents = track(b);
    await a.start();
    await b.start();
    expect(a.isLeader).toBe(true);
    // The next renewal's UPSERT runs, then nothing more arrives (its COMMIT included): the session sits idle in transaction, row locked.
    proxy.set({ kind: 'blackhole-at', pattern: 'renewing-leader-a', forward: true });
    const cutAt = performance.now();
    await vi.waitFor(() => expect(bEvents.some((e) => e.type === 'gained')).toBe(true), { timeout: 10_000, interval: 20 });
    const after = performance.now() - cutAt;
    // The lease runs out ttl after the last committed renewal; the lock is gone after idle_in_transaction_session_timeout.
    expect(after).toBeLessThan(TIMING.ttl + TIMING.renewInterval + 1_000);
    expect(a.isLeader).toBe(false);
  });

  it("an operator's row lock on one name never costs another name its leader", async () => {
    const locked = `locked-${driver}`;
    const other = `other-${driver}`;
    const conn = connect(driver, url);
    const lock = await operatorLocks(locked);
    try {
      const leader = createElector(conn.db, { name: other, id: 'l', ...TIMING });
      const leaderEvents = track(leader);
      await leader.start();
      expect(leader.isLeader).toBe(true);
      // More followers of the locked name than the elector's connections: before, their elections
      // held every connection until lock_timeout and the other name's renewals queued behind them.
      const followers = [1, 2, 3, 4, 5, 6].map((i) => createElector(conn.db, { name: locked, id: `f${i}`, ...TIMING }));
      for (const f of followers) track(f);
      await Promise.all(followers.map((f) => f.start()));
      await new Promise((r) => setTimeout(r, 3 * TIMING.ttl));
      expect(leaderEvents.filter((e) => e.type === 'lost')).toEqual([]);
      expect(leader.isLeader).toBe(true);
      expect(followers.some((f) => f.stats.elections.failed > 0)).toBe(true); // they gave up on the lock and retried
    } finally {
      await lock.release();
    }
  });
});

it('issue 11.2: a follower partitioned right after sending its election (the answer is lost) costs at most one ttl', async () => {
  // node-postgres: its named prepared statements show on the wire, so the proxy can cut right after one.
  const driver = 'node-postgres';
  const name = 'election-partition';
  const { proxy, url: through } = await proxied();
  const leader = createElector(connect(driver, url).db, { name, id: 'leader', ...TIMING });
  const a = createElector(connect(driver, through).db, { name, id: 'a', ...TIMING, listen: false });
  const b = createElector(connect(driver, url).db, { name, id: 'b', ...TIMING });
  const aEvents = track(a);
  track(leader);
  const bEvents = track(b);
  await leader.start();
  await a.start();
  await b.start();
  // A's next election is sent and runs, but nothing comes back.
  proxy.set({ kind: 'blackhole-at', pattern: 'drizzle_leader_elect', forward: true });
  await leader.stop();
  const stoppedAt = performance.now();
  await vi.waitFor(() => expect(bEvents.some((e) => e.type === 'gained')).toBe(true), { timeout: 10_000, interval: 20 });
  expect(performance.now() - stoppedAt).toBeLessThan(TIMING.ttl + TIMING.renewInterval + 1_000);
  expect(aEvents.some((e) => e.type === 'gained')).toBe(false);
});

it("issue 11.2: a node-postgres Pool's own timeouts do not replace the elector's bounds", async () => {
  const name = 'app-timeouts';
  const lock = await operatorLocks(name);
  const pool = new pg.Pool({ connectionString: url, lock_timeout: 30_000, statement_timeout: 60_000 });
  const errors: ElectorError[] = [];
  try {
    const follower = createElector(drizzlePg(pool) as unknown as LeaderDatabase, {
      name,
      ...TIMING,
      listen: false,
      hooks: { error: (e) => void errors.push(e as ElectorError) },
    });
    track(follower);
    const startedAt = performance.now();
    await follower.start();
    // lock_timeout = safetyMargin (300 ms), not the application's 30 s (then the 2.4 s client deadline).
    expect(performance.now() - startedAt).toBeLessThan(1_000);
    expect(String(errors[0]?.message)).toMatch(/lock timeout/);
  } finally {
    await lock.release();
    await pool.end();
  }
});

describe.each(DRIVERS)('issue 11.2: connections that go silent (%s)', (driver) => {
  it('every open connection goes silent while new ones work: a leader again within the bound, not never', async () => {
    const name = `silent-pool-${driver}`;
    const { proxy, url: through } = await proxied();
    const candidates = ['a', 'b', 'c'].map((id) => createElector(connect(driver, through).db, { name, id, ...TIMING }));
    const events = candidates.map(track);
    await Promise.all(candidates.map((c) => c.start()));
    await vi.waitFor(() => expect(candidates.filter((c) => c.isLeader)).toHaveLength(1), { timeout: 5_000 });
    const mark = events.map((e) => e.length);
    proxy.silenceExisting();
    const silentAt = performance.now();
    // The lease runs out, then a follower's statements time out twice, its connections are
    // replaced, and it wins: within ttl + two statement deadlines (2 × 2.4 s) + backoff.
    await vi.waitFor(() => expect(events.some((e, i) => e.slice(mark[i]).some((x) => x.type === 'gained'))).toBe(true), {
      timeout: 15_000,
      interval: 50,
    });
    expect(performance.now() - silentAt).toBeLessThan(TIMING.ttl + 2 * 2_400 + 2_000 + 1_000);
  });
});

describe.each(DRIVERS)('lease-checked transactions whose BEGIN fails (%s)', (driver) => {
  it('still run after more such failures than the pool has connections: no failed BEGIN keeps its connection from the pool', {
    timeout: 60_000,
  }, async () => {
    // Found by a fleet under faults: drizzle-orm (0.45) sends a node-postgres BEGIN outside the
    // try/finally that gives the client back, so each BEGIN whose connection ended kept one
    // client from the pool for good; with the pool empty, every later transaction waited
    // forever while the lease was still renewed. Here the pool has 2 connections and 4 BEGINs fail.
    const name = `begin-fails-${driver}`;
    const { proxy, url: through } = await proxied();
    const app = connect(driver, through, { max: 2 });
    const elector = createElector(app.db, { name, ...TIMING, listen: false });
    track(elector);
    await elector.start();
    const work = () =>
      elector.transaction(async (tx) => (await (tx as unknown as LeaderDatabase).execute(sql`select 1 as one`)) && 'committed');
    expect(await work()).toBe('committed');
    const failures: string[] = [];
    for (let round = 0; round < 4; round++) {
      await vi.waitFor(() => expect(elector.isLeader).toBe(true), { timeout: 10_000, interval: 10 });
      // The connection carrying the next BEGIN goes silent from that BEGIN on; then every
      // connection through the proxy is reset: the BEGIN fails with its connection.
      proxy.set({ kind: 'blackhole-at', pattern: 'begin' });
      const attempt = work().then(
        (v) => `${v}`,
        (e: Error) => `failed: ${e.message}`,
      );
      await vi.waitFor(() => expect(proxy.mode.kind).toBe('blackhole'), { timeout: 5_000, interval: 1 });
      proxy.cut();
      proxy.set({ kind: 'pass' });
      failures.push(await Promise.race([attempt, sleep(5_000).then(() => 'no answer in 5 s')]));
    }
    expect(failures.filter((f) => f.startsWith('failed')).length, failures.join('; ')).toBeGreaterThanOrEqual(3);
    // Before the fix: no answer at all here (the pool had no client left to give).
    await vi.waitFor(() => expect(elector.isLeader).toBe(true), { timeout: 10_000, interval: 10 });
    const after = await Promise.race([work(), sleep(5_000).then(() => 'no answer in 5 s')]);
    expect(after).toBe('committed');
    await app.close();
  });

  it('answer within the statement deadline while their BEGIN gets no answer, and run nothing once it does', async () => {
    const name = `begin-silent-${driver}`;
    const { proxy, url: through } = await proxied();
    const app = connect(driver, through, { max: 2 });
    const elector = createElector(app.db, { name, ...TIMING, listen: false });
    track(elector);
    await elector.start();
    let ran = 0;
    const work = () =>
      elector.transaction(async (tx) => {
        ran++;
        await (tx as unknown as LeaderDatabase).execute(sql`select 1`);
      });
    await work();
    ran = 0;
    proxy.set({ kind: 'blackhole-at', pattern: 'begin' });
    const startedAt = performance.now();
    const outcome = await Promise.race([
      work().then(
        () => 'committed',
        (e: Error) => e.message,
      ),
      sleep(8_000).then(() => 'no answer in 8 s'),
    ]);
    // The statement deadline: statement_timeout (ttl - margin, 1.2 s) plus as much for the network.
    expect(outcome).toMatch(/did not begin within 2400 ms/);
    expect(performance.now() - startedAt).toBeLessThan(2_400 + 1_500);
    proxy.set({ kind: 'pass' });
    // The held BEGIN now completes: its transaction is rolled back without running the work.
    await sleep(500);
    expect(ran).toBe(0);
    await app.close();
  });
});

describe('lease-checked transactions on node-postgres, before and after the work', () => {
  /**
   * A node-postgres pool of `max` clients (through a fault proxy of its own unless `direct`) and
   * an elector leading `name` on it, after one transaction; `close()` heals the proxy and ends the pool.
   */
  const poolLeader = async (name: string, max: number, options: { direct?: boolean } = {}) => {
    const via = options.direct ? null : await proxied();
    const pool = new pg.Pool({ connectionString: via?.url ?? url, max });
    pool.on('error', () => {});
    const elector = createElector(drizzlePg(pool) as unknown as LeaderDatabase, { name, ...TIMING, listen: false });
    track(elector);
    await elector.start();
    await elector.transaction(async () => 'warm');
    const close = async () => {
      via?.proxy.set({ kind: 'pass' });
      await pool.end();
    };
    return { proxy: via?.proxy as FaultProxy, pool, elector, close };
  };
  /** The error a call rejects with, or null if it resolves. */
  const failure = (call: Promise<unknown>) =>
    call.then(
      () => null,
      (e: Error) => e,
    );

  it("on a bare Client the application also uses, a transaction waiting for the Client is not answered early, and the application's write is not lost", async () => {
    // The caller used to get DeadlineExceededError at 2.4 s while its BEGIN still waited on the
    // Client; the application's next INSERT then ran inside that abandoned transaction and was
    // rolled back with it.
    await admin.query('create table if not exists bare_rows (id int)');
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => {});
    await client.connect();
    try {
      const elector = createElector(drizzlePg(client) as unknown as LeaderDatabase, { name: 'bare-client-tx', ...TIMING, listen: false });
      track(elector);
      await elector.start();
      await elector.transaction(async () => 'warm');
      // The application holds its Client past the statement deadline (2.4 s).
      const busy = client.query('select pg_sleep(3)');
      const outcome = elector
        .transaction(async () => 'committed')
        .then(
          (v) => v,
          (e: Error) => `failed: ${e.message}`,
        );
      await busy;
      await client.query('insert into bare_rows values (1)');
      expect(await outcome).toBe('committed');
      const [row] = await admin.query<{ n: number }>('select count(*)::int as n from bare_rows');
      expect(row!.n).toBe(1);
    } finally {
      await client.end();
    }
  });

  it("the first transaction's check of the lease table is bounded too: a pool the application holds gives DeadlineExceededError, not a wait", async () => {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    pool.on('error', () => {});
    try {
      const elector = createElector(drizzlePg(pool) as unknown as LeaderDatabase, { name: 'cold-key-check', ...TIMING, listen: false });
      track(elector);
      await elector.start();
      // Every client of the pool held by the application for 5 s, before any lease-checked transaction ran.
      const held = await Promise.all([pool.connect(), pool.connect()]);
      const releasing = sleep(5_000).then(() => {
        for (const c of held) c.release();
      });
      const startedAt = performance.now();
      const error = await failure(elector.transaction(async () => 'committed'));
      expect(error?.name).toBe('DeadlineExceededError');
      expect(performance.now() - startedAt).toBeLessThan(5_000);
      await releasing;
    } finally {
      await pool.end();
    }
  });

  it('a COMMIT whose answer is lost is reported as of unknown outcome, not as rolled back', async () => {
    await admin.query('create table if not exists acked_rows (id int)');
    const { proxy, elector, close } = await poolLeader('answer-lost', 2);
    try {
      // The server runs the COMMIT; its answer (and every answer after) is held, then the connections are reset.
      proxy.set({ kind: 'deaf-at', pattern: 'commit' });
      const outcome = failure(
        elector.transaction(
          async (tx) => {
            await (tx as unknown as LeaderDatabase).execute(sql`insert into acked_rows values (1)`);
          },
          { timeout: 500 },
        ),
      );
      await vi.waitFor(() => expect(proxy.mode.kind).toBe('deaf'), { timeout: 5_000, interval: 1 });
      await sleep(1_200);
      proxy.cut();
      proxy.set({ kind: 'pass' });
      const error = await outcome;
      const [row] = await admin.query<{ n: number }>('select count(*)::int as n from acked_rows');
      expect(row!.n).toBe(1);
      // Before: LeadershipLostError 'timed-out', "rolled back", for work that had committed.
      expect(error).toBeInstanceOf(CommitOutcomeUnknownError);
    } finally {
      await close();
    }
  });

  it('a COMMIT the server refuses at the timeout (a deferred trigger still running) is rolled back, and said so', async () => {
    await admin.query('create table if not exists slow_commit_rows (id int)');
    await admin.query(
      `create or replace function slow_commit() returns trigger language plpgsql as $$ begin perform pg_sleep(3); return null; end $$`,
    );
    await admin.query(
      `do $$ begin create constraint trigger slow_commit after insert on slow_commit_rows deferrable initially deferred
         for each row execute function slow_commit(); exception when duplicate_object then null; end $$`,
    );
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    pool.on('error', () => {});
    try {
      const elector = createElector(drizzlePg(pool) as unknown as LeaderDatabase, { name: 'slow-commit', ...TIMING, listen: false });
      track(elector);
      await elector.start();
      const error = await failure(
        elector.transaction(
          async (tx) => {
            await (tx as unknown as LeaderDatabase).execute(sql`insert into slow_commit_rows values (1)`);
          },
          { timeout: 1_000 },
        ),
      );
      const [row] = await admin.query<{ n: number }>('select count(*)::int as n from slow_commit_rows');
      expect(row!.n).toBe(0);
      // The COMMIT's own answer was the end of its session (the timeout): rolled back, not unknown.
      expect(error).toBeInstanceOf(LeadershipLostError);
      expect((error as LeadershipLostError).reason).toBe('timed-out');
    } finally {
      await pool.end();
    }
  });

  it('the wait for a connection, BEGIN and the lease check share one bound, counted from the call', async () => {
    const { proxy, pool, elector, close } = await poolLeader('one-bound', 1);
    try {
      // The application holds the only client for 1.5 s; then the lease check gets no answer.
      const held = await pool.connect();
      setTimeout(() => held.release(), 1_500);
      proxy.set({ kind: 'blackhole-at', pattern: 'for key share' });
      const startedAt = performance.now();
      const error = await failure(elector.transaction(async () => 'committed'));
      const took = performance.now() - startedAt;
      expect(error?.name).toBe('DeadlineExceededError');
      // One bound of 2.4 s from the call, not 1.5 s of waiting plus a fresh 2.4 s for the check.
      expect(took).toBeLessThan(2_400 + 1_000);
    } finally {
      await close();
    }
  });

  it('a transaction past its timeout on a connection that went silent answers soon after the timeout, and gives the connection up', async () => {
    const { proxy, pool, elector, close } = await poolLeader('silent-work', 1);
    try {
      // A real partition: when the server ends the session (its timeout), the client hears nothing.
      proxy.hideServerCloses = true;
      const outcome = failure(
        elector.transaction(
          async (tx) => {
            proxy.set({ kind: 'blackhole' });
            await (tx as unknown as LeaderDatabase).execute(sql`select 1`);
          },
          { timeout: 500 },
        ),
      );
      const error = await Promise.race([outcome, sleep(5_000).then(() => 'no answer in 5 s')]);
      // Before: no answer until the connection answered again (a real partition: until TCP gives up).
      expect(error).toBeInstanceOf(LeadershipLostError);
      expect((error as LeadershipLostError).reason).toBe('timed-out');
      expect(pool.totalCount).toBe(0);
    } finally {
      await close();
    }
  });

  it('a transaction abandoned at its deadline gives its connection up at once, not when the silent connection ends', async () => {
    const { proxy, pool, elector, close } = await poolLeader('abandoned-begin', 1);
    try {
      expect(pool.totalCount).toBe(1);
      proxy.set({ kind: 'blackhole-at', pattern: 'begin' });
      const error = await failure(elector.transaction(async () => 'committed'));
      expect(error?.message).toMatch(/did not begin within/);
      // Still silent: the pool's only client must not wait for it.
      await vi.waitFor(() => expect(pool.totalCount).toBe(0), { timeout: 1_000, interval: 10 });
    } finally {
      await close();
    }
  });
});

describe.each(DRIVERS)('issue 11.3 and 11.7: LISTEN under partition (%s)', (driver) => {
  it('stop() resolves at once, and hands over through NOTIFY, while its LISTEN connection is partitioned', async () => {
    const name = `listen-partition-${driver}`;
    const { proxy, url: through } = await proxied();
    const a = createElector(connect(driver, url).db, { name, id: 'a', ...TIMING, listen: { url: through } });
    const b = createElector(connect(driver, url).db, { name, id: 'b', ...TIMING });
    track(a);
    const bEvents = track(b);
    await a.start();
    await b.start();
    proxy.set({ kind: 'blackhole' });
    const started = performance.now();
    await a.stop();
    expect(performance.now() - started).toBeLessThan(500);
    await vi.waitFor(() => expect(bEvents.some((e) => e.type === 'gained')).toBe(true), { timeout: 1_000, interval: 5 });
  });

  it('stop() is bounded by one ttl while every connection of the elector is partitioned', async () => {
    const name = `full-partition-${driver}`;
    const { proxy, url: through } = await proxied();
    const a = createElector(connect(driver, through).db, { name, id: 'a', ...TIMING });
    track(a);
    await a.start();
    expect(a.isLeader).toBe(true);
    proxy.set({ kind: 'blackhole' });
    const started = performance.now();
    await a.stop();
    expect(performance.now() - started).toBeLessThan(TIMING.ttl + 200);
    expect(a.state).toBe('stopped');
  });

  it('stop() with a next in line (a resignation told to it alone) is bounded by one ttl while every connection is partitioned', async () => {
    const name = `full-partition-directed-${driver}`;
    const { proxy, url: through } = await proxied();
    const a = createElector(connect(driver, through).db, { name, id: 'a', ...TIMING });
    const b = createElector(connect(driver, url).db, { name, id: 'b', ...TIMING });
    track(a);
    const bEvents = track(b);
    await a.start();
    await b.start();
    expect(a.isLeader).toBe(true);
    // b volunteers within its 20 ms spread of its first denial; a hears it before the cut.
    await new Promise((r) => setTimeout(r, 300));
    proxy.set({ kind: 'blackhole' });
    const started = performance.now();
    await a.stop();
    expect(performance.now() - started).toBeLessThan(TIMING.ttl + 200);
    expect(a.state).toBe('stopped');
    // Nothing reached the server: b takes over when the lease runs out.
    await vi.waitFor(() => expect(bEvents.some((e) => e.type === 'gained')).toBe(true), { timeout: TIMING.ttl + 2_000, interval: 20 });
  });

  it("a group's stop() during a drain, with every connection partitioned, resolves within drainTimeout + one ttl", async () => {
    const names = [0, 1, 2].map((i) => `group-partition-${driver}-${i}`);
    const { proxy, url: through } = await proxied();
    const conn = connect(driver, through);
    const drainTimeout = 300;
    const g = createElectorGroup(conn.db, { names, id: `g-${driver}`, ...TIMING, drainTimeout, logger: SILENT_LOGGER });
    try {
      await g.start();
      await vi.waitFor(() => expect(g.leaderships().size).toBe(names.length), { timeout: 5_000, interval: 20 });
      // A task that never returns: the drain deadline applies, while nothing reaches the server.
      g.runWhileLeader(() => new Promise<void>(() => {}));
      proxy.set({ kind: 'blackhole' });
      const started = performance.now();
      await g.stop();
      expect(performance.now() - started).toBeLessThan(drainTimeout + TIMING.ttl + 300);
      expect(g.leaderships().size).toBe(0);
    } finally {
      proxy.set({ kind: 'pass' });
      await conn.close().catch(() => {});
    }
  });

  it('a silent LISTEN connection is noticed within two heartbeats, said once, and replaced', async () => {
    const name = `silent-listen-${driver}`;
    const { proxy, url: through } = await proxied();
    const errors: ElectorError[] = [];
    const timing = { ttl: 3_000, renewInterval: 1_000, safetyMargin: 500 };
    const a = createElector(connect(driver, url).db, { name, id: 'a', ...timing });
    const b = createElector(connect(driver, url).db, {
      name,
      id: 'b',
      ...timing,
      listen: { url: through },
      hooks: { error: (e) => void errors.push(e as ElectorError) },
    });
    track(a);
    const bEvents = track(b);
    await a.start();
    await b.start();
    proxy.set({ kind: 'blackhole' });
    const silentAt = performance.now();
    await vi.waitFor(() => expect(errors.filter((e) => e.operation === 'listen')).toHaveLength(1), { timeout: 5_000, interval: 20 });
    expect(performance.now() - silentAt).toBeLessThan(2 * timing.renewInterval + 500);
    proxy.set({ kind: 'pass' });
    // Replaced: notifications reach B again (an unrelated name's payload is counted, then ignored).
    const received = b.stats.notifications.received;
    await vi.waitFor(
      async () => {
        await admin.query(`select pg_notify('river_leadership', '{"v":1,"action":"resigned","name":"unrelated"}')`);
        expect(b.stats.notifications.received).toBeGreaterThan(received);
      },
      { timeout: 15_000, interval: 200 },
    );
    // And a handoff goes through NOTIFY again: milliseconds, not the lease.
    const stoppedAt = performance.now();
    await a.stop();
    await vi.waitFor(() => expect(bEvents.some((e) => e.type === 'gained')).toBe(true), { timeout: 5_000, interval: 5 });
    expect(performance.now() - stoppedAt).toBeLessThan(500);
  });
});

describe.each(DRIVERS)('issue 11.3: after stop() (%s)', (driver) => {
  it('a process whose every connection is partitioned still exits by itself once it has stopped', async () => {
    const { proxy, url: through } = await proxied();
    const child = fork(resolve(import.meta.dirname, '../fixtures/stop-and-exit.ts'), [driver, through], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      const first = await new Promise<{ leading: boolean }>((r) => child.once('message', (m) => r(m as { leading: boolean })));
      expect(first.leading).toBe(true);
      proxy.set({ kind: 'blackhole' });
      const stoppedAt = performance.now();
      child.send('stop');
      // stop() within one ttl, then every socket of the library is destroyed: nothing holds the process.
      const outcome = await Promise.race([exited.then(() => 'exited'), new Promise((r) => setTimeout(() => r('still running'), 6_000))]);
      expect(outcome).toBe('exited');
      expect(performance.now() - stoppedAt).toBeLessThan(1_500 + 3_000);
    } finally {
      child.kill('SIGKILL');
      proxy.set({ kind: 'pass' });
    }
  });
});

describe('issue 11.9: an abandoned renewal', () => {
  it('that lands after its deadline hands its lease to onLate, never silently keeps a term', async () => {
    const name = 'abandoned-renewal';
    const { proxy, url: through } = await proxied();
    const conn = connect('postgres.js', through, { max: 1 });
    const store = leaseStore(conn.db);
    const won = await store.elect({ name, leaderId: 'a', ttlMs: 60_000 });
    if (!won.won) throw new Error('setup: election failed');
    await admin.query('delete from river_leader where name = $1', [name]); // the row is gone: the UPSERT will INSERT a new term
    proxy.set({ kind: 'delay', ms: 100 }); // the answer comes 200 ms after the call
    const late: LeaderInfo[] = [];
    await expect(
      store.renew({ name, leaderId: 'a', term: won.lease.term, ttlMs: 60_000 }, { remainingMs: () => 100 }, (l) => late.push(l)),
    ).rejects.toThrow(/deadline/);
    await vi.waitFor(() => expect(late).toHaveLength(1), { timeout: 2_000, interval: 10 });
    expect(late[0]!.term).toBeGreaterThan(won.lease.term);
    expect((await leaseRow(name))?.term).toBe(String(late[0]!.term));
    proxy.set({ kind: 'pass' });
    await conn.close();
  });

  it('the elector releases such a late term at once instead of leaving it to expire', async () => {
    const name = 'abandoned-renewal-elector';
    const { proxy, url: through } = await proxied();
    const lateTerms: number[] = [];
    const resigned: number[] = [];
    // While A leads, the only statement carrying its id is its renewal.
    const a = createElectorWithStore(
      connect('postgres.js', through).db,
      { name, id: 'late-leader-a', ...TIMING, listen: false },
      (store) => ({
        elect: store.elect,
        renew: (input, deadline, onLate) =>
          store.renew(input, deadline, (lease) => {
            lateTerms.push(lease.term);
            onLate?.(lease);
          }),
        resign: (input) => {
          resigned.push(input.term);
          return store.resign(input);
        },
      }),
    );
    const events = track(a);
    await a.start();
    expect(a.isLeader).toBe(true);
    await admin.query('delete from river_leader where name = $1', [name]); // A's next renewal inserts a fresh term...
    proxy.set({ kind: 'blackhole-at', pattern: 'late-leader-a', forward: true }); // ...whose answer is held
    await vi.waitFor(() => expect(events.some((e) => e.type === 'lost')).toBe(true), { timeout: 5_000, interval: 10 });
    proxy.set({ kind: 'pass' }); // the answer arrives after A's trust window ran out
    await vi.waitFor(() => expect(lateTerms).toHaveLength(1), { timeout: 5_000, interval: 10 });
    await vi.waitFor(() => expect(resigned).toContain(lateTerms[0]), { timeout: 5_000, interval: 10 });
    // Deleted at once, not left to expire: the election is open again (A or B may take it, with a new term).
    expect(Number((await leaseRow(name))?.term ?? 0)).not.toBe(lateTerms[0]);
  });
});
