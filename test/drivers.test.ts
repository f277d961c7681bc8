/**
 * Drivers that cannot LISTEN (an HTTP-style driver: drizzle-orm/pg-proxy over a real server),
 * `listen: false`, and `listen: { url }` for statements through one connection and LISTEN
 * through another.
 */
import { drizzle as drizzleProxy } from 'drizzle-orm/pg-proxy';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createElector, type Elector, type LeaderDatabase, type Logger } from '../src/index.js';
import { createTestDatabase } from './support/db.js';

let url: string;
let pool: pg.Pool;
let proxied: LeaderDatabase;
const electors: Elector[] = [];

beforeAll(async () => {
  url = await createTestDatabase();
  pool = new pg.Pool({ connectionString: url, max: 6 });
  // An HTTP-style driver: every statement is a request/response; no session, so no LISTEN.
  proxied = drizzleProxy(async (sql, params, method) => {
    const result =
      method === 'all'
        ? await pool.query({ text: sql, values: params, rowMode: 'array' })
        : await pool.query({ text: sql, values: params });
    return { rows: result.rows };
  }) as unknown as LeaderDatabase;
});
afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop()));
});
afterAll(() => pool.end());

function recordingLogger() {
  const warnings: string[] = [];
  const logger: Logger = { debug() {}, info() {}, warn: (_f, message) => void warnings.push(message), error() {} };
  return { logger, warnings };
}

const create = (db: LeaderDatabase, options: Parameters<typeof createElector>[1]) => {
  const e = createElector(db, options);
  electors.push(e);
  return e;
};

describe('drivers without LISTEN', () => {
  it('run poll-only automatically, with one clear warning line', async () => {
    const { logger, warnings } = recordingLogger();
    const options = { name: 'proxy-poll', ttl: 1_500, renewInterval: 300, safetyMargin: 300, logger };
    const leader = create(proxied, { ...options, id: 'leader' });
    const follower = create(proxied, { ...options, id: 'follower' });
    await leader.start();
    await follower.start();
    expect(leader.isLeader).toBe(true);
    expect(warnings.filter((w) => /cannot LISTEN; running poll-only/.test(w))).toHaveLength(1);
    // The follower learns of the resignation only by polling: roughly the lease, not milliseconds.
    await new Promise((r) => setTimeout(r, 200));
    const started = performance.now();
    await leader.stop();
    await follower.waitForLeadership();
    expect(performance.now() - started).toBeGreaterThan(500);
  });

  it('listen: false forces poll-only without a warning', async () => {
    const { logger, warnings } = recordingLogger();
    const e = create(proxied, { name: 'proxy-quiet', listen: false, logger });
    await e.start();
    expect(e.isLeader).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('listen: { url } LISTENs through its own connection while statements use db: handoff in milliseconds', async () => {
    const options = { name: 'proxy-listen-url', ttl: 60_000, renewInterval: 20_000, safetyMargin: 1_000, listen: { url } };
    const leader = create(proxied, { ...options, id: 'leader' });
    const follower = create(proxied, { ...options, id: 'follower' });
    await leader.start();
    await follower.start();
    const started = performance.now();
    await leader.stop();
    await follower.waitForLeadership();
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
