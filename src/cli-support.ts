/** Connection and formatting helpers shared by the CLI commands and the demo. */
import type { Sql } from 'postgres';
import { UsageError } from './cli-errors.js';
import { InvalidOptionError } from './errors.js';
import { checkChannel } from './options.js';
import type { LeaderDatabase } from './queries.js';
import { createLeaderTable, type LeaderTable, riverLeader } from './schema.js';

export interface CliContext {
  readonly db: LeaderDatabase;
  readonly client: Sql;
  readonly table: LeaderTable;
  readonly channel: string;
  close(): Promise<void>;
}

export interface ConnectionOptions {
  url?: string;
  schema?: string;
  table?: string;
  channel?: string;
}

/** Validates the URL and table options, connects with postgres.js and checks the connection works. */
export async function openDatabase(options: ConnectionOptions): Promise<CliContext> {
  const url = options.url;
  if (!url) {
    throw new UsageError('No database URL: pass --url postgres://user:password@host:5432/db or set DATABASE_URL');
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError('The database URL is not a URL: expected postgres://user:password@host:5432/db');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new UsageError(`The database URL must start with postgres:// or postgresql://, got "${parsed.protocol}//"`);
  }
  let channel: string;
  let table: LeaderTable;
  try {
    channel = checkChannel('--channel', options.channel ?? 'river_leadership');
    table = options.schema || options.table ? createLeaderTable({ schema: options.schema, table: options.table }).table : riverLeader;
  } catch (error) {
    if (error instanceof InvalidOptionError) throw new UsageError(error.message);
    throw error;
  }
  const [{ default: postgres }, { drizzle }] = await Promise.all([import('postgres'), import('drizzle-orm/postgres-js')]);
  const client = postgres(url, { max: 2, connect_timeout: 5, onnotice: () => {}, idle_timeout: 5 });
  const close = () => client.end({ timeout: 1 });
  try {
    await client`select 1`;
  } catch (error) {
    await close().catch(() => {});
    throw error;
  }
  return { db: drizzle(client) as unknown as LeaderDatabase, client, table, channel, close };
}

export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function formatDuration(ms: number): string {
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1_000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  return `${(ms / 1_000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** Local wall-clock time of day with milliseconds, for narrated lines. */
export function timestamp(at = new Date()): string {
  return at.toISOString().slice(11, 23);
}
