/**
 * A full NOTIFY queue must not stop a change of leadership. PostgreSQL refuses a whole
 * statement whose NOTIFY cannot be queued, and any role that can connect can fill the queue:
 * LISTEN in a session left inside an open transaction (the queue cannot drain past it), then
 * flood any channel. The lease statements then go again without their notification.
 *
 * This file starts a private server with a small queue (PostgreSQL 17's
 * max_notify_queue_pages): the queue is shared by every database of a server, so filling it
 * on the shared test server would disturb the other files.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createElector, createElectorGroup, listLeases, migrate, requestResign, SILENT_LOGGER } from '../src/index.js';
import { type Connection, connect, DRIVERS } from './support/db.js';
import { type EmbeddedServer, startEmbeddedServer } from './support/server.js';

let server: EmbeddedServer;
let admin: postgres.Sql;
beforeAll(async () => {
  server = await startEmbeddedServer({ postgresFlags: ['-c', 'max_notify_queue_pages=64'] });
  admin = postgres(server.url, { max: 2, onnotice: () => {} });
  const conn = connect('postgres.js', server.url);
  await migrate(conn.db);
  await conn.close();
});
afterAll(async () => {
  await admin?.end({ timeout: 5 });
  await server?.stop();
});

/** Fills the server's NOTIFY queue the way an unprivileged role can; returns the release. */
async function fillNotifyQueue(): Promise<() => Promise<void>> {
  const stuck = postgres(server.url, { max: 1, onnotice: () => {} });
  const held = stuck.reserve();
  const session = await held;
  await session`listen junk`;
  await session`begin`;
  await session`select 1`;
  const flood = postgres(server.url, { max: 1, onnotice: () => {} });
  for (let i = 0; ; i++) {
    try {
      await flood`select pg_notify('junk', repeat('x', 7990))`;
    } catch (error) {
      expect(String((error as Error).message)).toMatch(/too many notifications in the NOTIFY queue/);
      break;
    }
    if (i > 100_000) throw new Error('the NOTIFY queue never filled');
  }
  await flood.end({ timeout: 5 });
  return async () => {
    await session`commit`;
    session.release();
    await stuck.end({ timeout: 5 });
  };
}

describe.each(DRIVERS)('a full NOTIFY queue (%s)', (driver) => {
  let conn: Connection;
  beforeAll(() => {
    conn = connect(driver, server.url, { max: 6 });
  });
  afterAll(() => conn.close());

  it('an elector still wins, renews and resigns; the others learn by polling', async () => {
    const name = `queue-${driver}`;
    const timing = { ttl: 2_000, renewInterval: 300, safetyMargin: 400, logger: SILENT_LOGGER };
    const release = await fillNotifyQueue();
    const a = createElector(conn.db, { ...timing, name, id: 'a' });
    const b = createElector(conn.db, { ...timing, name, id: 'b' });
    try {
      // Before: the election statement itself was refused, so nobody could lead while the queue was full.
      await a.start();
      expect(a.isLeader).toBe(true);
      await b.start();
      expect(b.isLeader).toBe(false);
      await new Promise((r) => setTimeout(r, 700)); // renewals carry no NOTIFY: they go on as usual
      expect(a.isLeader).toBe(true);
      // Before: the resignation was refused and the row stayed until it expired.
      await a.stop();
      expect((await listLeases(conn.db)).filter((l) => l.name === name)).toEqual([]);
      await b.waitForLeadership({ signal: AbortSignal.timeout(10_000) });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await release();
    }
  });

  it("a requested handover still hands over: the resigned leader holds off past the followers' poll", async () => {
    const name = `queue-handover-${driver}`;
    const timing = { ttl: 2_000, renewInterval: 300, safetyMargin: 400, logger: SILENT_LOGGER };
    const a = createElector(conn.db, { ...timing, name, id: 'a' });
    const b = createElector(conn.db, { ...timing, name, id: 'b' });
    await a.start();
    await b.start();
    const release = await fillNotifyQueue();
    try {
      const term = a.lease!.term;
      expect(await requestResign(conn.db, { name, term })).toMatchObject({ term, leaderId: 'a' });
      // Before: b never heard the resignation and a won the name back after its 300 ms hold-off (5 of 5 runs).
      await b.waitForLeadership({ signal: AbortSignal.timeout(10_000) });
      expect(a.isLeader).toBe(false);
      expect(b.lease!.term).toBeGreaterThan(term);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await release();
    }
  });

  it('an elector group still elects, leaves and resigns its names', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `queue-group-${driver}-${i}`);
    const timing = { ttl: 2_000, renewInterval: 300, safetyMargin: 400, logger: SILENT_LOGGER };
    const release = await fillNotifyQueue();
    const a = createElectorGroup(conn.db, { ...timing, names, group: `q-${driver}`, id: 'ga' });
    const b = createElectorGroup(conn.db, { ...timing, names, group: `q-${driver}`, id: 'gb' });
    try {
      await a.start();
      expect(a.leaderships().size).toBe(names.length);
      await b.start();
      await a.stop();
      // Its member row and every name were deleted although no notification could be sent.
      const left = await listLeases(conn.db, { internal: true });
      expect(left.filter((l) => l.leaderId === 'ga')).toEqual([]);
      await vi.waitFor(() => expect(b.leaderships().size).toBe(names.length), { timeout: 10_000, interval: 50 });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await release();
    }
  });
});
