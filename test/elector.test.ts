/**
 * The elector against a real server, through both drivers, and on PGlite: River's elector
 * cases, NOTIFY handoff, trust-window behaviour and hostile notifications. On PGlite the
 * "admin" connection is the same instance (it has no other way in).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { leaseStore } from '../src/dev/testing.js';
import { createElector, listLeases, requestResign } from '../src/index.js';
import { CORE_DRIVERS, type Connection, connect, createTestDatabase } from './support/db.js';
import { ElectorPool, freezeEventLoop, sleep } from './support/elector.js';
import { pgliteConnection } from './support/pglite.js';

let url: string;
beforeAll(async () => {
  url = await createTestDatabase();
});

describe.each(CORE_DRIVERS)('elector (%s)', (driver) => {
  let conn: Connection;
  let admin: Connection;
  let pool: ElectorPool;
  let name: string;
  let counter = 0;

  beforeAll(async () => {
    if (driver === 'pglite') {
      conn = await pgliteConnection();
      admin = conn;
      return;
    }
    conn = connect(driver, url, { max: 10 });
    admin = connect('postgres.js', url, { max: 2 });
  });
  afterAll(async () => {
    await conn.close();
    await admin.close();
  });
  beforeEach(() => {
    pool = new ElectorPool(conn);
    name = `${driver}-${++counter}`;
  });
  afterEach(async () => {
    await pool.stopAll();
  });

  const stored = async () => (await listLeases(conn.db)).find((l) => l.name === name) ?? null;

  it('wins an empty election at start and holds it across renewals', async () => {
    const elector = pool.create({ name, ttl: 1_500, renewInterval: 200, safetyMargin: 300 });
    await elector.start();
    expect(elector.isLeader).toBe(true);
    const term = elector.lease!.term;
    const firstExpiry = (await stored())!.expiresAt.getTime();
    await sleep(1_000);
    expect(elector.isLeader).toBe(true);
    expect(elector.lease!.term).toBe(term);
    expect((await stored())!.expiresAt.getTime()).toBeGreaterThan(firstExpiry);
    expect(pool.events.get(elector)).toEqual([{ type: 'gained', term, lease: expect.objectContaining({ term, name }) }]);
  });

  it('competing electors: the second is denied, and wins after the first stops', async () => {
    const first = pool.create({ name, id: 'first' });
    const second = pool.create({ name, id: 'second' });
    await first.start();
    await second.start();
    expect(first.isLeader).toBe(true);
    expect(second.isLeader).toBe(false);
    const oldTerm = first.lease!.term;
    await first.stop();
    expect(first.isLeader).toBe(false);
    await second.waitForLeadership();
    expect(second.lease!.term).toBeGreaterThan(oldTerm);
    expect(pool.events.get(first)!.at(-1)).toEqual({ type: 'lost', term: oldTerm, reason: 'stopped' });
  });

  it('hands off through NOTIFY in well under a second even with a 60 s TTL and 30 s renewals', async () => {
    const options = { name, ttl: 60_000, renewInterval: 30_000, safetyMargin: 1_000 };
    const leader = pool.create({ ...options, id: 'leader' });
    const follower = pool.create({ ...options, id: 'follower' });
    await leader.start();
    await follower.start();
    expect(follower.isLeader).toBe(false);
    const started = performance.now();
    await leader.stop();
    await follower.waitForLeadership();
    // The follower slept for the lease (~60 s); only the notification can have woken it.
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('in poll-only mode the same handoff waits for the lease', async () => {
    const options = { name, ttl: 2_000, renewInterval: 500, safetyMargin: 500, listen: false };
    const leader = pool.create({ ...options, id: 'leader' });
    const follower = pool.create({ ...options, id: 'follower' });
    await leader.start();
    await follower.start();
    // Let the follower settle into its sleep until the lease can have expired.
    await sleep(300);
    const started = performance.now();
    await leader.stop();
    await follower.waitForLeadership();
    // Stop deleted the row at once, but a poll-only follower learns of it only when it wakes.
    expect(performance.now() - started).toBeGreaterThan(800);
  });

  it('start() resolves right after the first attempt, also for a poll-only follower facing a long lease', async () => {
    const options = { name, ttl: 60_000, renewInterval: 20_000, safetyMargin: 1_000, listen: false };
    await pool.create({ ...options, id: 'holder' }).start();
    const follower = pool.create({ ...options, id: 'follower' });
    const started = performance.now();
    await follower.start();
    expect(follower.isLeader).toBe(false);
    expect(follower.state).toBe('follower');
    // Not after its first sleep, which lasts until the holder's lease (about 60 s) runs out.
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('20 electors on one name converge to exactly one leader, and stay that way', async () => {
    const electors = Array.from({ length: 20 }, (_, i) => pool.create({ name, id: `c${i}` }));
    await Promise.all(electors.map((e) => e.start()));
    await pool.waitForOneLeader();
    await sleep(500);
    expect(pool.leaders()).toHaveLength(1);
    const terms = new Set(electors.flatMap((e) => pool.events.get(e)!.map((ev) => ev.term)));
    expect(terms.size).toBe(1);
  });

  it('names are isolated: one leader per name', async () => {
    const a = pool.create({ name: `${name}-a`, id: 'x' });
    const b = pool.create({ name: `${name}-b`, id: 'x2' });
    await a.start();
    await b.start();
    expect(a.isLeader && b.isLeader).toBe(true);
  });

  it('loses leadership when the term is replaced underneath it, and never resigns the successor', async () => {
    const elector = pool.create({ name, ttl: 3_000, renewInterval: 200, safetyMargin: 500 });
    await elector.start();
    const term = elector.lease!.term;
    // Someone else's term replaces ours (an operator, a split brain being healed). The elector
    // renews every 200 ms: a renewal landing between the expiry and the election (a loaded
    // machine) makes the lease live again, and the replacement is simply tried again.
    let usurper = { won: false };
    for (let tries = 0; tries < 10 && !usurper.won; tries++) {
      await admin.query(`update river_leader set expires_at = now() - interval '1 second' where name = $1`, [name]);
      usurper = await leaseStore(admin.db).elect({ name, leaderId: 'usurper', ttlMs: 60_000 });
    }
    expect(usurper.won).toBe(true);
    await vi.waitFor(() => expect(elector.isLeader).toBe(false), { timeout: 3_000 });
    expect(pool.events.get(elector)!.at(-1)).toEqual({ type: 'lost', term, reason: 'renewal-denied' });
    expect((await stored())!.leaderId).toBe('usurper');
  });

  it('a renewal that finds its row deleted reports the old term lost and the new term gained', async () => {
    const elector = pool.create({ name, ttl: 3_000, renewInterval: 200, safetyMargin: 500 });
    await elector.start();
    const term = elector.lease!.term;
    await admin.query('delete from river_leader where name = $1', [name]);
    await vi.waitFor(() => expect(elector.lease?.term).toBeGreaterThan(term), { timeout: 3_000 });
    const events = pool.events.get(elector)!;
    expect(events.slice(-2)).toEqual([
      { type: 'lost', term, reason: 'term-replaced' },
      { type: 'gained', term: elector.lease!.term, lease: expect.anything() },
    ]);
  });

  it('a paused leader reads isLeader === false on the first read after it resumes', async () => {
    const elector = pool.create({ name, ttl: 1_000, renewInterval: 200, safetyMargin: 200 });
    await elector.start();
    expect(elector.isLeader).toBe(true);
    const aborted: string[] = [];
    elector.runWhileLeader((signal) => void signal.addEventListener('abort', () => aborted.push('aborted')));
    await sleep(10);
    freezeEventLoop(1_200); // no timer can run: only the synchronous re-check can notice
    expect(elector.isLeader).toBe(false);
    expect(aborted).toEqual(['aborted']);
  });

  it('runWhileLeader runs the task on each leadership and aborts it when leadership ends', async () => {
    const elector = pool.create({ name, id: 'runner' });
    const runs: { term: number; reason?: unknown }[] = [];
    const handle = elector.runWhileLeader(async (signal, lease) => {
      const run: { term: number; reason?: unknown } = { term: lease.term };
      runs.push(run);
      await new Promise((resolve) => signal.addEventListener('abort', resolve));
      run.reason = String(signal.reason);
    });
    await elector.start();
    await vi.waitFor(() => expect(runs).toHaveLength(1));
    expect(await elector.resign()).toBe(true);
    expect(runs[0]!.reason).toMatch(/resigned/);
    await vi.waitFor(() => expect(runs).toHaveLength(2), { timeout: 5_000 });
    expect(runs[1]!.term).toBeGreaterThan(runs[0]!.term);
    handle.cancel();
    await handle.done;
    expect(runs[1]!.reason).toMatch(/cancelled/);
  });

  it('request-resign stress: five requests for one term cause exactly one handoff', async () => {
    const a = pool.create({ name, id: 'a' });
    const b = pool.create({ name, id: 'b' });
    await a.start();
    await b.start();
    const leader = a.isLeader ? a : b;
    const term = leader.lease!.term;
    await Promise.all(Array.from({ length: 5 }, () => requestResign(admin.db, { name, term })));
    // The leader steps down at its next renewal; on PGlite that renewal queues behind the five
    // requests on the one session, so it may still lead right now.
    await vi.waitFor(() => expect(pool.leaders().filter((e) => e !== leader)).toHaveLength(1), { timeout: 5_000, interval: 5 });
    const next = await pool.waitForOneLeader();
    expect(next).not.toBe(leader);
    await sleep(500);
    await expect(pool.waitForOneLeader()).resolves.toBe(next);
    const gained = [...pool.events.values()].flat().filter((e) => e.type === 'gained');
    expect(gained).toHaveLength(2);
  });

  it('an untargeted request_resign moves leadership to another candidate', async () => {
    const a = pool.create({ name, id: 'a' });
    const b = pool.create({ name, id: 'b' });
    await a.start();
    await b.start();
    const leader = a.isLeader ? a : b;
    await requestResign(admin.db, { name });
    await vi.waitFor(() => expect(pool.leaders().filter((e) => e !== leader)).toHaveLength(1), { timeout: 3_000 });
  });

  it('start/stop stress: never two leaders, and every elector closes cleanly', async () => {
    const violations: number[] = [];
    const electors = Array.from({ length: 6 }, (_, i) =>
      pool.create({ name, id: `s${i}`, ttl: 2_000, renewInterval: 300, safetyMargin: 300 }),
    );
    const watch = setInterval(() => {
      const n = electors.filter((e) => e.isLeader).length;
      if (n > 1) violations.push(n);
    }, 1);
    try {
      await Promise.all(
        electors.map(async (e, i) => {
          await sleep(i * 7);
          await e.start();
          await sleep(50 + i * 13);
          await e.stop();
        }),
      );
    } finally {
      clearInterval(watch);
    }
    expect(violations).toEqual([]);
    expect(electors.every((e) => e.state === 'stopped')).toBe(true);
    expect(await stored()).toBeNull();
  });

  it('stop() is idempotent and safe to call concurrently; start() after stop() is refused', async () => {
    const elector = pool.create({ name });
    await elector.start();
    await Promise.all([elector.stop(), elector.stop(), elector.stop()]);
    await elector.stop();
    expect(elector.state).toBe('stopped');
    await expect(elector.start()).rejects.toThrow(/stopped/);
  });

  it('slow and throwing subscribers receive every transition in order and block nobody', async () => {
    const elector = pool.create({ name, id: 'slow' });
    const slow: string[] = [];
    elector.subscribe(async (event) => {
      await sleep(100);
      slow.push(`${event.type}:${event.term}`);
    });
    elector.subscribe(() => {
      throw new Error('listener bug');
    });
    await elector.start();
    const t1 = elector.lease!.term;
    await elector.resign();
    const lease2 = await elector.waitForLeadership();
    await elector.resign();
    const lease3 = await elector.waitForLeadership();
    // The elector went through five transitions while the slow listener was still on the first.
    expect(slow.length).toBeLessThan(5);
    await vi.waitFor(() =>
      expect(slow).toEqual([`gained:${t1}`, `lost:${t1}`, `gained:${lease2.term}`, `lost:${lease2.term}`, `gained:${lease3.term}`]),
    );
  });

  // Not defined for PGlite: its LISTEN is its one in-process session, with no backend to
  // terminate (test/pglite.test.ts closes the instance instead).
  if (driver !== 'pglite')
    it('the LISTEN connection recovers after pg_terminate_backend, and handoff still goes through NOTIFY', async () => {
      const options = { name, ttl: 60_000, renewInterval: 30_000, safetyMargin: 1_000 };
      const leader = pool.create({ ...options, id: 'leader' });
      const follower = pool.create({ ...options, id: 'follower' });
      await leader.start();
      await follower.start();
      const killed = await admin.query<{ pid: number }>(
        `select pg_terminate_backend(pid) as ok, pid from pg_stat_activity where datname = current_database() and query ilike 'listen %' and pid <> pg_backend_pid()`,
      );
      expect(killed.length).toBeGreaterThan(0);
      await vi.waitFor(
        async () => {
          const rows = await admin.query(`select 1 from pg_stat_activity where datname = current_database() and query ilike 'listen %'`);
          expect(rows.length).toBeGreaterThan(0);
        },
        { timeout: 10_000, interval: 50 },
      );
      const started = performance.now();
      await leader.stop();
      await follower.waitForLeadership();
      expect(performance.now() - started).toBeLessThan(1_000);
    });

  it('forged and malformed notifications change nothing', async () => {
    const leader = pool.create({ name, id: 'leader' });
    const follower = pool.create({ name, id: 'follower' });
    await leader.start();
    await follower.start();
    const term = leader.lease!.term;
    const payloads = [
      'not json',
      '{"v":1}',
      '[]',
      'null',
      JSON.stringify({ v: 2, action: 'request_resign', name }),
      JSON.stringify({ v: 1, action: 'explode', name }),
      JSON.stringify({ v: 1, action: 'resigned', name, leaderId: 'leader', term }), // forged resignation of the live leader
      JSON.stringify({ v: 1, action: 'elected', name, leaderId: 'follower', term: term + 100 }), // forged election
      JSON.stringify({ v: 1, action: 'request_resign', name, term: term + 1 }), // aimed at another term
      JSON.stringify({ v: 1, action: 'resigned', name, leaderId: 7, term: 'x' }),
      'x'.repeat(7_990),
    ];
    for (const payload of payloads) await admin.query('select pg_notify($1, $2)', ['river_leadership', payload]);
    await sleep(300);
    expect(leader.isLeader).toBe(true);
    expect(leader.lease!.term).toBe(term);
    expect(follower.isLeader).toBe(false);
    expect((await stored())!.term).toBe(term);
  });

  it('start() rejects with a typed error naming the fix when the table is missing', async () => {
    const bare =
      driver === 'pglite' ? await pgliteConnection({ migrated: false }) : connect(driver, await createTestDatabase({ migrated: false }));
    try {
      const elector = createElector(bare.db, { name });
      await expect(elector.start()).rejects.toThrow(/does not exist.*migrate/);
      expect(elector.state).toBe('stopped');
    } finally {
      await bare.close();
    }
  });
});
