/**
 * Per-file isolation: every test file gets a database of its own on the shared test server,
 * and connections through either driver.
 */
import { randomBytes } from 'node:crypto';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePostgresJs } from 'drizzle-orm/postgres-js';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, inject } from 'vitest';
import { type LeaderDatabase, migrate } from '../../src/index.js';

export type DriverName = 'postgres.js' | 'node-postgres';
export const DRIVERS: readonly DriverName[] = ['postgres.js', 'node-postgres'];
/** The drivers the core elector suite runs on: both network drivers, and PGlite (a third engine: Postgres in WASM). */
export type CoreDriver = DriverName | 'pglite';
export const CORE_DRIVERS: readonly CoreDriver[] = [...DRIVERS, 'pglite'];

export interface Connection {
  readonly db: LeaderDatabase;
  /** Raw SQL for test setup and inspection (returns rows). */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Creates a fresh database (migrated unless `migrated: false`) and drops it after the file. */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<string> {
  const adminUrl = inject('adminUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  afterAll(async () => {
    const cleanup = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await cleanup.unsafe(`drop database if exists ${name} with (force)`);
    await cleanup.end();
  });
  const url = withDatabase(adminUrl, name);
  if (options.migrated !== false) {
    const conn = connect('postgres.js', url);
    await migrate(conn.db);
    await conn.close();
  }
  return url;
}

/** Opens a Drizzle database through the given driver. */
export function connect(driver: DriverName, url: string, options: { max?: number; reconnectBackoffSeconds?: number } = {}): Connection {
  if (driver === 'postgres.js') {
    const backoff = options.reconnectBackoffSeconds;
    const client = postgres(url, { max: options.max ?? 4, onnotice: () => {}, ...(backoff ? { backoff: () => backoff } : {}) });
    return {
      db: drizzlePostgresJs(client) as unknown as LeaderDatabase,
      query: async (text, params = []) => (await client.unsafe(text, params as never[])) as never,
      close: () => client.end({ timeout: 5 }),
    };
  }
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 4 });
  pool.on('error', () => {}); // a terminated idle client must not crash the test process
  return {
    db: drizzlePg(pool) as unknown as LeaderDatabase,
    query: async (text, params = []) => (await pool.query(text, params)).rows,
    close: () => pool.end(),
  };
}
