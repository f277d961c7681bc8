/**
 * A wrong DATABASE_URL is loud: what retrying cannot fix makes start() reject with a typed error
 * that says what to fix; what it can fix is retried with a warning line; either way start()
 * settles within its bound. Both drivers, against the test server and local stand-ins.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePostgresJs } from 'drizzle-orm/postgres-js';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createElector, DatabaseUnusableError, type LeaderDatabase, stderrLogger } from '../src/index.js';
import { createTestDatabase, DRIVERS, withDatabase } from './support/db.js';

const TIMING = { ttl: 3_000, renewInterval: 1_000, safetyMargin: 500 } as const;
/** Connect timeout plus statement timeout, both the trust window here (2.5 s), plus slack. */
const START_BOUND_MS = 2 * (TIMING.ttl - TIMING.safetyMargin) + 1_000;

let url: string;
const servers: Server[] = [];
beforeAll(async () => {
  url = await createTestDatabase();
});
afterAll(() => {
  for (const s of servers) s.close();
});

async function listen(onConnection: (socket: Socket) => void): Promise<number> {
  // A client that resets its connection is not a finding of these fixtures.
  const server = createServer((socket) => {
    socket.on('error', () => {});
    onConnection(socket);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

function withLogin(base: string, user: string, password: string): string {
  const u = new URL(base);
  u.username = user;
  u.password = password;
  return u.toString();
}

function open(driver: string, target: string): { db: LeaderDatabase; close(): Promise<void> } {
  if (driver === 'postgres.js') {
    const client = postgres(target, { onnotice: () => {} });
    return { db: drizzlePostgresJs(client) as unknown as LeaderDatabase, close: () => client.end({ timeout: 1 }) };
  }
  const pool = new pg.Pool({ connectionString: target });
  pool.on('error', () => {});
  return { db: drizzlePg(pool) as unknown as LeaderDatabase, close: () => pool.end() };
}

async function startWith(driver: string, target: string) {
  const lines: string[] = [];
  const conn = open(driver, target);
  const elector = createElector(conn.db, { name: 'wrong-url', ...TIMING, logger: stderrLogger((line) => void lines.push(line)) });
  const startedAt = performance.now();
  let error: unknown = null;
  try {
    await elector.start();
  } catch (e) {
    error = e;
  }
  const tookMs = performance.now() - startedAt;
  await elector.stop();
  await conn.close().catch(() => {});
  return { error, tookMs, lines, state: elector.state };
}

describe.each(DRIVERS)('a wrong URL (%s)', (driver) => {
  it.each([
    [
      'an unknown database',
      () => withDatabase(url, 'no_such_database'),
      'database-missing',
      /does not exist: create it or fix the database name/,
    ],
    [
      'a wrong password',
      () => withLogin(url, 'postgres', 'wrong'),
      'authentication',
      /Password authentication failed: check the user and password/,
    ],
    // With password authentication the server does not say whether the role exists.
    ['an unknown role', () => withLogin(url, 'no_such_role', 'x'), 'authentication', /Password authentication failed|refused the login/],
    [
      'an unresolvable host',
      () => 'postgres://postgres@no-such-host.invalid:5432/postgres',
      'host-unknown',
      /Cannot resolve the database host/,
    ],
  ])('%s: start() rejects with a DatabaseUnusableError that says what to fix', async (_what, target, kind, message) => {
    const { error, tookMs } = await startWith(driver, target());
    expect(error).toBeInstanceOf(DatabaseUnusableError);
    expect((error as DatabaseUnusableError).kind).toBe(kind);
    expect(String((error as Error).message)).toMatch(message);
    expect(tookMs).toBeLessThan(START_BOUND_MS);
  });

  it('a refused port: start() resolves as a follower at once and a warning line names the cause', async () => {
    const port = await listen((socket) => socket.destroy());
    const closed = await new Promise<number>((resolve) => {
      const server = servers.at(-1)!;
      server.close(() => resolve(port)); // now nothing listens there
    });
    const { error, tookMs, lines } = await startWith(driver, `postgres://postgres@127.0.0.1:${closed}/postgres`);
    expect(error).toBeNull();
    expect(tookMs).toBeLessThan(START_BOUND_MS);
    expect(lines.join('')).toMatch(
      /WARN drizzle-leader: election failed; retrying \(Cannot reach PostgreSQL at 127\.0\.0\.1:\d+ \(connection refused\)/,
    );
  });

  it('something that accepts connections and never answers: start() settles within its bound, and says so', async () => {
    const port = await listen(() => {});
    const { error, tookMs, lines } = await startWith(driver, `postgres://postgres@127.0.0.1:${port}/postgres`);
    expect(error).toBeNull();
    expect(tookMs).toBeLessThan(START_BOUND_MS);
    expect(lines.join('')).toMatch(/WARN drizzle-leader: election failed; retrying/);
  });

  it('something that is not PostgreSQL (an HTTP server): start() settles within its bound, and says so', async () => {
    // One answer per connection: a client that sends twice must not make the fixture write after end.
    const port = await listen((socket) => socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    const { error, tookMs, lines } = await startWith(driver, `postgres://postgres@127.0.0.1:${port}/postgres`);
    expect(error).toBeNull();
    expect(tookMs).toBeLessThan(START_BOUND_MS);
    expect(lines.join('')).toMatch(/WARN drizzle-leader: election failed; retrying/);
  });
});
