/**
 * The shared LISTEN connection (listen/notifier.ts) against a real server, both drivers: a
 * channel nobody in the process wants any more stops being listened to at once, so its
 * notifications no longer wake the backend and the process.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { subscribeChannel } from '../src/dev/testing.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from './support/db.js';

let url: string;
beforeAll(async () => {
  url = await createTestDatabase();
});

const quiet = { notification: () => {}, listening: () => {}, disconnected: () => {} };

describe.each(DRIVERS)('shared LISTEN connection (%s)', (driver) => {
  let conn: Connection;
  let admin: Connection;
  beforeAll(() => {
    conn = connect(driver, url);
    admin = connect(driver, url);
  });
  afterAll(async () => {
    await Promise.all([conn.close(), admin.close()]);
  });

  /** What the LISTEN backend of this database ran last, if it mentions `channel`. */
  const lastAbout = async (channel: string) =>
    (
      (await admin.query(`select query from pg_stat_activity where datname = current_database() and query ilike $1`, [
        `%listen "${channel}"%`,
      ])) as { query: string }[]
    ).map((r) => r.query);

  it('a channel left while its LISTEN was on its way is UNLISTENed once the LISTEN is answered', async () => {
    // Another channel keeps the connection open throughout.
    let listening = () => {};
    const heard = new Promise<void>((resolve) => {
      listening = resolve;
    });
    const keep = subscribeChannel(conn.db, true, `keep_${driver.replace(/\W/g, '')}`, { ...quiet, listening: () => listening() });
    await heard;
    try {
      const channel = `brief_${driver.replace(/\W/g, '')}`;
      const leave = subscribeChannel(conn.db, true, channel, quiet)!;
      await leave(); // same tick: its LISTEN has been queued, not answered
      await vi.waitFor(
        async () => {
          // Before: the LISTEN was recorded as live when answered, and nothing ever took it back.
          expect(await lastAbout(channel)).toEqual([`unlisten "${channel}"`]);
        },
        { timeout: 2_000, interval: 20 },
      );
    } finally {
      await keep?.();
    }
  });
});
