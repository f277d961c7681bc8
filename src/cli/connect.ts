/** The CLI's and the demo's database connection: the URL and table options checked, then a connection that works. */
import type { Sql } from 'postgres';
import { createLeaderTable, ELECTOR_DEFAULTS, InvalidOptionError, type LeaderDatabase, type LeaderTable, riverLeader } from '../index.js';
import { checkIdentifier } from '../internal.js';
import { UsageError } from './errors.js';

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
    channel = checkIdentifier('--channel', options.channel ?? ELECTOR_DEFAULTS.channel);
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
