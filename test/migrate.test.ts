/**
 * Schema and migrations: the shipped migrations match src/schema.ts, migrate() is idempotent and
 * safe under concurrency, keeps to its own migrations table, and custom tables work through the
 * user's own drizzle-kit flow.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createElector, createLeaderTable, getLeader, migrate } from '../src/index.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from './support/db.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const drizzleKit = join(root, 'node_modules', 'drizzle-kit', 'bin.cjs');
const scratch = mkdtempSync(join(tmpdir(), 'drizzle-leader-kit-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function generate(schemaFile: string, out: string): Promise<string> {
  // drizzle-kit wants paths relative to its working directory.
  const args = ['generate', '--dialect', 'postgresql', '--schema', relative(root, schemaFile), '--out', relative(root, out)];
  const { stdout, stderr } = await run(process.execPath, [drizzleKit, ...args], {
    cwd: root,
  });
  return stdout + stderr;
}

describe('the shipped migrations', () => {
  it('agree with src/schema.ts: drizzle-kit generate finds nothing new', async () => {
    const out = join(scratch, 'shipped');
    cpSync(join(root, 'drizzle'), out, { recursive: true });
    const before = readdirSync(out).sort();
    const output = await generate(join(root, 'src', 'schema.ts'), out);
    expect(output).toMatch(/No schema changes/);
    expect(readdirSync(out).sort()).toEqual(before);
  });

  it('create the table with its checks and a GENERATED ALWAYS identity term', () => {
    const sqlFiles = readdirSync(join(root, 'drizzle')).filter((f) => f.endsWith('.sql'));
    const ddl = sqlFiles.map((f) => readFileSync(join(root, 'drizzle', f), 'utf8')).join('\n');
    expect(ddl).toMatch(/CREATE TABLE "river_leader"/);
    expect(ddl).toMatch(/"term" bigint GENERATED ALWAYS AS IDENTITY/);
    expect(ddl).toMatch(/char_length\("river_leader"\."name"\) between 1 and 127/);
    expect(ddl).toMatch(/char_length\("river_leader"\."leader_id"\) between 1 and 127/);
  });
});

describe.each(DRIVERS)('migrate() (%s)', (driver) => {
  let url: string;
  let admin: Connection;
  beforeAll(async () => {
    url = await createTestDatabase({ migrated: false });
    admin = connect('postgres.js', url);
  });
  afterAll(() => admin.close());

  it('is safe when many processes start at once, and idempotent', async () => {
    const conns = Array.from({ length: 6 }, () => connect(driver, url, { max: 2 }));
    try {
      await Promise.all(conns.map((c) => migrate(c.db)));
      await migrate(conns[0]!.db);
    } finally {
      await Promise.all(conns.map((c) => c.close()));
    }
    const tables = await admin.query<{ table_schema: string; table_name: string }>(
      `select table_schema, table_name from information_schema.tables where table_schema in ('public', 'drizzle') order by 1, 2`,
    );
    expect(tables).toEqual([
      { table_schema: 'drizzle', table_name: '__drizzle_leader_migrations' },
      { table_schema: 'public', table_name: 'river_leader' },
    ]);
    const applied = await admin.query('select hash from drizzle.__drizzle_leader_migrations');
    expect(applied).toHaveLength(readdirSync(join(root, 'drizzle')).filter((f) => f.endsWith('.sql')).length);
  });

  it('works with a pool of one connection (the lock is held on a dedicated session)', async () => {
    const fresh = await createTestDatabase({ migrated: false });
    const tiny = connect(driver, fresh, { max: 1 });
    try {
      await migrate(tiny.db);
      expect(await tiny.query('select count(*)::int as n from river_leader')).toEqual([{ n: 0 }]);
    } finally {
      await tiny.close();
    }
  });

  it('never touches the application migrations table', async () => {
    const rows = await admin.query(`select to_regclass('drizzle.__drizzle_migrations') as t`);
    expect(rows[0]).toEqual({ t: null });
  });
});

describe("a custom schema and table through the user's drizzle-kit flow", () => {
  it('generates CREATE SCHEMA and the table, and an elector runs on it', async () => {
    const schemaFile = join(scratch, 'app-schema.ts');
    writeFileSync(
      schemaFile,
      `import { createLeaderTable } from ${JSON.stringify(join(root, 'src', 'schema.ts'))};\n` +
        `export const { schema: opsSchema, table: leases } = createLeaderTable({ schema: 'ops', table: 'leases' });\n`,
    );
    const out = join(scratch, 'custom');
    await generate(schemaFile, out);
    const ddl = readdirSync(out)
      .filter((f) => f.endsWith('.sql'))
      .map((f) => readFileSync(join(out, f), 'utf8'))
      .join('\n');
    expect(ddl).toMatch(/CREATE SCHEMA "ops"/);
    expect(ddl).toMatch(/CREATE TABLE "ops"\."leases"/);

    const url = await createTestDatabase({ migrated: false });
    const conn = connect('postgres.js', url);
    try {
      for (const statement of ddl.split('--> statement-breakpoint')) await conn.query(statement);
      const { table } = createLeaderTable({ schema: 'ops', table: 'leases' });
      const elector = createElector(conn.db, { table, name: 'custom', channel: 'ops_leadership' });
      await elector.start();
      expect(elector.isLeader).toBe(true);
      expect((await getLeader(conn.db, { table, name: 'custom' }))?.leaderId).toBe(elector.id);
      await elector.stop();
      expect(await getLeader(conn.db, { table, name: 'custom' })).toBeNull();
    } finally {
      await conn.close();
    }
  });
});
