/**
 * The library's own connections (lease/connection.ts), against a real server and both drivers:
 * the session settings they carry from their first statement on.
 */
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireStatementDatabase, sessionBounds } from '../src/dev/testing.js';
import { type LeaderDatabase, SILENT_LOGGER } from '../src/index.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from './support/db.js';

const bounds = sessionBounds({ ttl: 6_000, safetyMargin: 1_000 });

/** One row of `text` run on `db`, whatever the driver's result shape. */
async function one(db: LeaderDatabase, text: ReturnType<typeof sql>): Promise<Record<string, string>> {
  const result = (await db.execute(text)) as unknown as Record<string, string>[] | { rows: Record<string, string>[] };
  return (Array.isArray(result) ? result : result.rows)[0]!;
}

const settings = sql`select current_setting('plan_cache_mode') as plan_cache_mode, current_setting('statement_timeout') as statement_timeout, current_setting('application_name') as application_name`;

let url: string;
beforeAll(async () => {
  url = await createTestDatabase();
});

describe.each(DRIVERS)('own connections (%s)', (driver) => {
  let conn: Connection;
  beforeAll(() => {
    conn = connect(driver, url);
  });
  afterAll(() => conn.close());

  it.each(['elect', 'lead'] as const)('plan every statement once (%s): generic plans, beside the server-side bounds', async (role) => {
    const held = await acquireStatementDatabase(conn.db, bounds, SILENT_LOGGER, role);
    try {
      expect(held.error).toBeNull();
      const row = await one(held.db, settings);
      // Custom plans (the default for a statement's first five runs) would be planned again at
      // each handoff, on both ends: see lease/connection.ts.
      expect(row.plan_cache_mode).toBe('force_generic_plan');
      expect(row.statement_timeout).toBe('5s'); // ttl − safetyMargin
    } finally {
      await held.release();
    }
  });
});

describe("node-postgres: the application's settings, wherever they come from, beside the library's", () => {
  /** What the elector's own election connection runs with, for a pool made from `config`. */
  const ownSettings = async (config: pg.PoolConfig) => {
    const pool = new pg.Pool({ max: 1, ...config });
    try {
      const held = await acquireStatementDatabase(drizzlePg(pool) as unknown as LeaderDatabase, bounds, SILENT_LOGGER, 'elect');
      try {
        expect(held.error).toBeNull();
        return await one(held.db, settings);
      } finally {
        await held.release();
      }
    } finally {
      await pool.end();
    }
  };

  it('its own startup options are kept', async () => {
    const row = await ownSettings({ connectionString: url, options: '-c application_name=app-own-option' });
    expect(row.application_name).toBe('app-own-option');
    expect(row.plan_cache_mode).toBe('force_generic_plan');
  });

  it('PGOPTIONS is kept (node-postgres reads it only when no options are given)', async () => {
    const before = process.env.PGOPTIONS;
    process.env.PGOPTIONS = '-c application_name=from-pgoptions';
    try {
      const row = await ownSettings({ connectionString: url });
      expect(row.application_name).toBe('from-pgoptions');
      expect(row.plan_cache_mode).toBe('force_generic_plan');
    } finally {
      if (before === undefined) delete process.env.PGOPTIONS;
      else process.env.PGOPTIONS = before;
    }
  });

  it("a connection string's options are kept, and its timeouts do not replace the elector's bounds", async () => {
    const withSettings = new URL(url);
    withSettings.searchParams.set('options', '-c application_name=from-url');
    withSettings.searchParams.set('statement_timeout', '600000');
    const row = await ownSettings({ connectionString: withSettings.toString() });
    expect(row.application_name).toBe('from-url');
    expect(row.plan_cache_mode).toBe('force_generic_plan');
    expect(row.statement_timeout).toBe('5s');
  });

  it('the same for a connection string node-postgres reads but the URL standard does not (empty host, host in the query)', async () => {
    const parsed = new URL(url);
    // The form unix-socket URLs with credentials take; here the host in the query is a TCP one.
    const odd = `postgres://${parsed.username}:${parsed.password}@${parsed.pathname}?host=${parsed.hostname}&port=${parsed.port}&statement_timeout=600000&options=-c%20application_name%3Dodd-url`;
    expect(() => new URL(odd)).toThrow();
    const row = await ownSettings({ connectionString: odd });
    expect(row.statement_timeout).toBe('5s');
    expect(row.application_name).toBe('odd-url');
    expect(row.plan_cache_mode).toBe('force_generic_plan');
  });
});
