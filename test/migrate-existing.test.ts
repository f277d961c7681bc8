/**
 * migrate() meets a river_leader it did not create: the application's own drizzle-kit flow
 * (both paths used at once), an older shape, River's own table. And at every start after the
 * first it sends nothing, so the application's log gets no NOTICEs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { createElector, type LeaderDatabase, LeaseTableMismatchError, migrate } from '../src/index.js';
import { createTestDatabase } from './support/db.js';

const shipped = resolve(import.meta.dirname, '..', 'drizzle');
const sqlOf = (index: number) =>
  readFileSync(
    join(
      shipped,
      readdirSync(shipped)
        .filter((f) => f.endsWith('.sql'))
        .sort()[index]!,
    ),
    'utf8',
  )
    .split('--> statement-breakpoint')
    .join(';\n');

async function database() {
  const url = await createTestDatabase({ migrated: false });
  const notices: string[] = [];
  const client = postgres(url, { max: 2, onnotice: (n) => void notices.push(String(n.message)) });
  return { client, notices, db: drizzle(client) as unknown as LeaderDatabase };
}

const journalRows = async (client: postgres.Sql) =>
  (await client.unsafe(`select count(*)::int as n from drizzle.__drizzle_leader_migrations`))[0]!.n as number;

describe('migrate() and a table it did not create', () => {
  it('a table created by the application’s drizzle-kit flow (the same SQL) is adopted, not re-created', async () => {
    const { client, db } = await database();
    try {
      // What `drizzle-kit migrate` of a schema re-exporting riverLeader runs, into the app's own journal.
      const shippedCount = readdirSync(shipped).filter((f) => f.endsWith('.sql')).length;
      for (let i = 0; i < shippedCount; i++) await client.unsafe(sqlOf(i));
      await migrate(db); // before: relation "river_leader_term_seq" (or constraint "river_leader_name_term_key") already exists
      expect(await journalRows(client)).toBe(readdirSync(shipped).filter((f) => f.endsWith('.sql')).length);
      const elector = createElector(db, { name: 'adopted', ttl: 2_000, renewInterval: 500, safetyMargin: 500 });
      await elector.start();
      expect(elector.isLeader).toBe(true);
      await elector.stop();
    } finally {
      await client.end();
    }
  });

  it('a table in the shape of an older migration is recorded up to it, then upgraded', async () => {
    const { client, db } = await database();
    try {
      await client.unsafe(sqlOf(0));
      await migrate(db);
      const columns = await client.unsafe(
        `select column_name from information_schema.columns where table_name = 'river_leader' and column_name = 'resign_requested_at'`,
      );
      expect(columns).toHaveLength(1);
      const key = await client.unsafe(`select 1 from pg_constraint where conname = 'river_leader_name_term_key'`);
      expect(key).toHaveLength(1);
    } finally {
      await client.end();
    }
  });

  it("River's own river_leader is refused with an error that names the way out, and left untouched", async () => {
    const { client, db } = await database();
    try {
      await client.unsafe(`create table river_leader (
        name text primary key default 'default' check (name = 'default'),
        elected_at timestamptz not null, expires_at timestamptz not null, leader_id text not null)`);
      const error = await migrate(db).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseTableMismatchError);
      expect(String((error as Error).message)).toMatch(/River's own leader table/);
      expect(String((error as Error).message)).toMatch(/createLeaderTable\(\{ table: 'drizzle_leader' \}\)/);
      expect(String((error as Error).message)).toMatch(/missing: term bigint identity, resign_requested_at/);
      const columns = await client.unsafe(`select column_name from information_schema.columns where table_name = 'river_leader'`);
      expect(columns.map((c) => c.column_name).sort()).toEqual(['elected_at', 'expires_at', 'leader_id', 'name']);
      expect(await client.unsafe(`select to_regclass('drizzle.__drizzle_leader_migrations') as t`)).toEqual([{ t: null }]);
    } finally {
      await client.end();
    }
  });

  it('once up to date, migrate() sends nothing: no NOTICE reaches the application', async () => {
    const { client, db, notices } = await database();
    try {
      await migrate(db);
      notices.length = 0;
      await migrate(db);
      await migrate(db);
      expect(notices).toEqual([]);
    } finally {
      await client.end();
    }
  });
});
