/**
 * Drivers that cannot LISTEN: a hosted-HTTP-style driver (drizzle-orm/pg-proxy, sending every
 * statement as an HTTP request to a proxy this file runs, which forwards it to the real server),
 * `listen: false`, and `listen: { url }` for statements through one connection and LISTEN
 * through another.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { drizzle as drizzleProxy } from 'drizzle-orm/pg-proxy';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createElector, type Elector, type LeaderDatabase, type Logger, migrate, UnsupportedDriverError } from '../src/index.js';
import { createTestDatabase } from './support/db.js';

let url: string;
let pool: pg.Pool;
let proxy: Server;
let proxied: LeaderDatabase;
let requests = 0;
const electors: Elector[] = [];

/** The HTTP proxy drizzle-orm/pg-proxy is written for: one JSON request per statement. */
async function startProxy(target: pg.Pool): Promise<Server> {
  const server = createServer(async (req, res) => {
    requests++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const { sql, params, method } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    try {
      const result = await target.query({ text: sql, values: params, ...(method === 'all' ? { rowMode: 'array' } : {}) });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ rows: result.rows }));
    } catch (error) {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (error as Error).message }));
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

beforeAll(async () => {
  url = await createTestDatabase();
  pool = new pg.Pool({ connectionString: url, max: 6 });
  proxy = await startProxy(pool);
  const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/query`;
  proxied = drizzleProxy(async (sql, params, method) => {
    const response = await fetch(endpoint, { method: 'POST', body: JSON.stringify({ sql, params, method }) });
    const body = (await response.json()) as { rows?: unknown[]; error?: string };
    if (!response.ok) throw new Error(body.error);
    return { rows: body.rows ?? [] };
  }) as unknown as LeaderDatabase;
});
afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop()));
});
afterAll(async () => {
  proxy.closeAllConnections();
  await new Promise((resolve) => proxy.close(resolve));
  await pool.end();
});

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
    expect(requests).toBeGreaterThan(0);
    expect(warnings.filter((w) => /cannot LISTEN; running poll-only/.test(w))).toHaveLength(1);
    expect(warnings).toHaveLength(1);
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

describe('migrate() on a driver without sessions', () => {
  it('is refused with one typed line naming the driver and the way out, before anything is sent', async () => {
    const before = requests;
    const error = await migrate(proxied).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedDriverError);
    const message = (error as Error).message;
    expect(message).toMatch(/^migrate\(\) cannot run on drizzle-orm\/pg-proxy: .*drizzle-kit/);
    expect(message).not.toContain('\n');
    expect(requests).toBe(before);
  });
});
