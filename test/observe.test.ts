/** Observe-only API: getLeader and watchLeader; one shared LISTEN connection per client. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createElector, getLeader, type LeaderChange, watchLeader } from '../src/index.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from './support/db.js';

let url: string;
beforeAll(async () => {
  url = await createTestDatabase();
});

describe.each(DRIVERS)('observing (%s)', (driver) => {
  let conn: Connection;
  let admin: Connection;
  beforeAll(() => {
    conn = connect(driver, url, { max: 4 });
    admin = connect('postgres.js', url, { max: 1 });
  });
  afterAll(async () => {
    await conn.close();
    await admin.close();
  });

  it('getLeader reads the holder with the server-computed lease left, and null once expired', async () => {
    const name = `get-${driver}`;
    expect(await getLeader(conn.db, { name })).toBeNull();
    const e = createElector(conn.db, { name, id: 'holder' });
    await e.start();
    const leader = await getLeader(conn.db, { name });
    expect(leader).toMatchObject({ name, leaderId: 'holder', term: e.lease!.term });
    expect(leader!.remainingMs).toBeGreaterThan(10_000);
    await e.stop();
    await admin.query(
      `insert into river_leader (name, leader_id, elected_at, expires_at) values ($1, 'gone', now(), now() - interval '1 second')`,
      [name],
    );
    expect(await getLeader(conn.db, { name })).toBeNull();
  });

  it('watchLeader reports the current leader at once, then every change, without campaigning', async () => {
    const name = `watch-${driver}`;
    const changes: LeaderChange[] = [];
    const watch = watchLeader(conn.db, { name, pollInterval: 5_000 }, (change) => void changes.push(change));
    const options = { name, ttl: 60_000, renewInterval: 20_000, safetyMargin: 1_000 };
    const a = createElector(conn.db, { ...options, id: 'a' });
    const b = createElector(conn.db, { ...options, id: 'b' });
    try {
      await vi.waitFor(() => expect(changes).toEqual([{ leader: null, previous: null }]));
      await a.start();
      await b.start();
      // NOTIFY-driven: far sooner than the 5 s poll.
      await vi.waitFor(() => expect(changes.at(-1)?.leader?.leaderId).toBe('a'), { timeout: 1_000 });
      await a.stop();
      await vi.waitFor(() => expect(changes.at(-1)?.leader?.leaderId).toBe('b'), { timeout: 1_000 });
      // Each change names the one before it; a vacant moment between a and b may be reported.
      for (let i = 1; i < changes.length; i++) expect(changes[i]!.previous).toEqual(changes[i - 1]!.leader);
      expect(changes.map((c) => c.leader?.leaderId ?? null).filter((id) => id !== null)).toEqual(['a', 'b']);
      const terms = changes.flatMap((c) => (c.leader ? [c.leader.term] : []));
      for (let i = 1; i < terms.length; i++) expect(terms[i]).toBeGreaterThan(terms[i - 1]!);
    } finally {
      await watch.stop();
      await Promise.all([a.stop(), b.stop()]);
    }
    const count = changes.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(changes).toHaveLength(count); // nothing after stop()
  });

  it('all electors and watchers of one client share a single LISTEN connection', async () => {
    const shared = connect(driver, url, { max: 2 });
    const electors = ['x', 'y', 'z'].map((name) => createElector(shared.db, { name: `${driver}-shared-${name}` }));
    const watch = watchLeader(shared.db, { name: `${driver}-shared-x` }, () => {});
    try {
      for (const e of electors) await e.start();
      const listening = await admin.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and query ilike 'listen %' and backend_type = 'client backend'`,
      );
      // This client's LISTEN connection plus any of the other describe block's, never one per elector.
      expect(listening[0]!.n).toBeLessThanOrEqual(2);
    } finally {
      await watch.stop();
      await Promise.all(electors.map((e) => e.stop()));
      await shared.close();
    }
  });
});
