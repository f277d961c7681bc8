/**
 * Ordered handover: stop(), resign() and a requested resignation end the leadership for its
 * readers at once, keep (and renew) the lease while the term's tasks and lease-checked
 * transactions finish, and only then delete the row: the successor's term begins after the
 * predecessor's work has returned, or after drainTimeout.
 */
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Elector, type LeadershipEvent, LeadershipLostError, type Logger, requestResign, SILENT_LOGGER } from '../src/index.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from './support/db.js';
import { ElectorPool, sleep } from './support/elector.js';

let url: string;
beforeAll(async () => {
  url = await createTestDatabase();
});

/** Collects warnings, for the drain-overrun log line. */
function warnings(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger: Logger = { ...SILENT_LOGGER, warn: (_fields: unknown, message?: string) => void lines.push(String(message)) };
  return { logger, lines };
}

describe.each(DRIVERS)('ordered handover (%s)', (driver) => {
  let conn: Connection;
  let pool: ElectorPool;
  let name: string;
  let counter = 0;

  beforeAll(() => {
    conn = connect(driver, url, { max: 10 });
  });
  afterAll(async () => {
    await conn.close();
  });
  beforeEach(() => {
    pool = new ElectorPool(conn);
    name = `handover-${driver}-${++counter}`;
  });
  afterEach(async () => {
    await pool.stopAll();
  });

  /** A leader and a follower; the follower records when it gains leadership. */
  async function pair(options: Record<string, unknown> = {}) {
    const leader = pool.create({ name, id: 'old', logger: SILENT_LOGGER, ...options });
    await leader.start();
    expect(leader.isLeader).toBe(true);
    const follower = pool.create({ name, id: 'new', logger: SILENT_LOGGER, ...options });
    let gainedAt: number | null = null;
    follower.subscribe((event: LeadershipEvent) => {
      if (event.type === 'gained') gainedAt ??= performance.now();
    });
    await follower.start();
    return { leader, follower, gainedAt: () => gainedAt };
  }

  /** A task that, once its signal aborts, takes `windDownMs` to return; records when it did. */
  async function windingDownTask(leader: Elector, windDownMs: number) {
    const record = { startedAt: null as number | null, abortedAt: null as number | null, returnedAt: null as number | null };
    const run = leader.runWhileLeader(async (signal) => {
      record.startedAt = performance.now();
      if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      record.abortedAt = performance.now();
      await sleep(windDownMs);
      record.returnedAt = performance.now();
    });
    await vi.waitFor(() => expect(record.startedAt).not.toBeNull());
    return { record, run };
  }

  it('stop() aborts a task that takes 2 s to wind down, keeps the lease until it has returned, and only then hands over', async () => {
    const { leader, gainedAt } = await pair();
    const { record, run } = await windingDownTask(leader, 2_000);
    const stopped = leader.stop();
    await vi.waitFor(() => expect(record.abortedAt).not.toBeNull());
    expect(leader.isLeader).toBe(false);
    await stopped;
    expect(record.returnedAt).not.toBeNull();
    await run.done;
    await vi.waitFor(() => expect(gainedAt()).not.toBeNull(), { timeout: 5_000 });
    expect(gainedAt()!).toBeGreaterThan(record.returnedAt!);
  });

  it('resign() does the same, and the drain keeps renewing a lease shorter than the work', async () => {
    const { leader, follower, gainedAt } = await pair({ ttl: 1_000, renewInterval: 100, safetyMargin: 200, drainTimeout: 3_000 });
    const { record } = await windingDownTask(leader, 1_500);
    const renewalsBefore = leader.stats.renewals.ok;
    expect(await leader.resign()).toBe(true);
    expect(record.returnedAt).not.toBeNull();
    // 1.5 s of wind-down with a 1 s lease: only renewals kept the follower out meanwhile.
    expect(leader.stats.renewals.ok - renewalsBefore).toBeGreaterThanOrEqual(5);
    await vi.waitFor(() => expect(follower.isLeader).toBe(true), { timeout: 5_000 });
    expect(gainedAt()!).toBeGreaterThan(record.returnedAt!);
  });

  it('while draining, the leadership is over for readers: isLeader is false and transaction() is refused', async () => {
    const { leader } = await pair();
    await windingDownTask(leader, 500);
    const stopped = leader.stop();
    await sleep(50);
    expect(leader.isLeader).toBe(false);
    expect(leader.lease).toBeNull();
    const error = await leader.transaction(async () => 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeadershipLostError);
    await stopped;
  });

  it('an open lease-checked transaction is waited for and commits before the successor begins', async () => {
    const { leader, gainedAt } = await pair();
    await conn.db.execute(sql`create table if not exists handover_log (term bigint, at double precision)`);
    let committedAt = 0;
    const work = leader.transaction(async (tx, lease) => {
      await sleep(600);
      await tx.execute(sql`insert into handover_log values (${lease.term}, 0)`);
    });
    void work.then(() => {
      committedAt = performance.now();
    });
    await sleep(50);
    await leader.stop();
    await work;
    await vi.waitFor(() => expect(gainedAt()).not.toBeNull(), { timeout: 5_000 });
    expect(committedAt).toBeGreaterThan(0);
    expect(gainedAt()!).toBeGreaterThan(committedAt);
  });

  it('drainTimeout bounds the wait; the overrunning task is named in a warning', async () => {
    const { logger, lines } = warnings();
    const leader = pool.create({ name, id: 'stuck', logger, drainTimeout: 300 });
    await leader.start();
    let started = false;
    leader.runWhileLeader(
      async () => {
        started = true;
        await sleep(10_000); // ignores its signal
      },
      { label: 'the nightly export' },
    );
    await vi.waitFor(() => expect(started).toBe(true));
    const stopAt = performance.now();
    await leader.stop();
    const took = performance.now() - stopAt;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(5_000);
    expect(lines.some((line) => line.includes('the nightly export') && line.includes('drainTimeout'))).toBe(true);
  });

  it('drainTimeout: 0 hands over at once, as before this option existed', async () => {
    const { leader, follower } = await pair({ drainTimeout: 0 });
    const { record } = await windingDownTask(leader, 2_000);
    await leader.resign();
    await vi.waitFor(() => expect(follower.isLeader).toBe(true), { timeout: 5_000 });
    expect(record.returnedAt).toBeNull();
  });

  it('a requested resignation drains too', async () => {
    const { leader, follower, gainedAt } = await pair();
    const { record } = await windingDownTask(leader, 500);
    await requestResign(conn.db, { name });
    await vi.waitFor(() => expect(follower.isLeader).toBe(true), { timeout: 10_000 });
    expect(record.returnedAt).not.toBeNull();
    expect(gainedAt()!).toBeGreaterThan(record.returnedAt!);
  });

  it('runWhileLeader returns a handle: done resolves once cancelled and the run has returned', async () => {
    const leader = pool.create({ name, logger: SILENT_LOGGER });
    await leader.start();
    const { record, run } = await windingDownTask(leader, 300);
    await vi.waitFor(() => expect(run.running).toBe(true));
    run.cancel();
    await run.done;
    expect(record.returnedAt).not.toBeNull();
    expect(run.running).toBe(false);
    expect(leader.isLeader).toBe(true); // cancelling a task is not resigning
  });
});
