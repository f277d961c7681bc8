import { sql } from 'drizzle-orm';
import { type AnyPgColumn, bigint, check, pgSchema, pgTable, text, timestamp, unique } from 'drizzle-orm/pg-core';
import { checkIdentifier } from './util/identifier.js';

/** Name of the lease table when no custom name is given. */
export const DEFAULT_TABLE_NAME = 'river_leader';

/**
 * Builds the columns and constraints of a lease table. One function serves the
 * default table and every custom one, so the two can never drift apart.
 *
 * `term` is a GENERATED ALWAYS identity column: Postgres hands out the value,
 * nobody can insert or update it to a chosen number, and the sequence behind it
 * never goes backwards across deleted rows, resignations or server restarts
 * (a committed term is always WAL-logged before its commit). That makes it a
 * fencing token. It is read as a JS number: 2^53 terms at a thousand elections a
 * second would take 285,000 years.
 */
function leaseColumns() {
  return {
    name: text('name').primaryKey(),
    leaderId: text('leader_id').notNull(),
    electedAt: timestamp('elected_at', { withTimezone: true, mode: 'date' }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    term: bigint('term', { mode: 'number' }).notNull().generatedAlwaysAsIdentity(),
    /**
     * Set by `requestResign` (an UPDATE: it needs write privilege on the table), cleared by
     * every election. The leader reads it with each renewal and resigns the term it names; a
     * `request_resign` notification only makes it renew (and so look) sooner.
     */
    resignRequestedAt: timestamp('resign_requested_at', { withTimezone: true, mode: 'date' }),
  };
}

/**
 * `unique (name, term)` can never be violated (name alone is the key); it is there for its
 * side effect on row locks. It makes `term` a key column, so a takeover (which sets a new term)
 * needs the row's FOR UPDATE lock while a renewal (which sets only `expires_at`) needs FOR NO KEY
 * UPDATE. A lease-checked transaction holds FOR KEY SHARE: that blocks the first and not the
 * second, so no successor can be elected while the holder's transaction is open, and the
 * holder's own renewals never wait for it (see lease/transaction.ts).
 */
function leaseConstraints(table: string) {
  return (t: { name: AnyPgColumn; leaderId: AnyPgColumn; term: AnyPgColumn }) => [
    check(`${table}_name_length`, sql`char_length(${t.name}) between 1 and 127`),
    check(`${table}_leader_id_length`, sql`char_length(${t.leaderId}) between 1 and 127`),
    unique(`${table}_name_term_key`).on(t.name, t.term),
  ];
}

/**
 * The default lease table, `public.river_leader`: one row per election name.
 * Re-export it from your Drizzle schema file so `drizzle-kit generate` sees it.
 */
export const riverLeader = pgTable(DEFAULT_TABLE_NAME, leaseColumns(), leaseConstraints(DEFAULT_TABLE_NAME));

/** Any lease table made by this module: the default or one from {@link createLeaderTable}. */
export type LeaderTable = typeof riverLeader;

/** The row of a lease table. */
export type LeaderRow = LeaderTable['$inferSelect'];

export interface LeaderTableOptions {
  /** Postgres schema to create the table in (omit for `public`). */
  schema?: string;
  /** Table name; defaults to `river_leader`. */
  table?: string;
}

/**
 * Makes a lease table in a schema and under a name of your choice. Export both
 * `schema` (drizzle-kit only emits CREATE SCHEMA for exported `pgSchema`s) and
 * `table` from your schema file, and pass `table` to `createElector`.
 */
export function createLeaderTable(options: LeaderTableOptions = {}) {
  const tableName = checkIdentifier('table', options.table ?? DEFAULT_TABLE_NAME);
  if (options.schema !== undefined) checkIdentifier('schema', options.schema);
  if (options.schema === undefined || options.schema === 'public') {
    return { schema: undefined, table: pgTable(tableName, leaseColumns(), leaseConstraints(tableName)) as LeaderTable };
  }
  const schema = pgSchema(options.schema);
  return {
    schema,
    table: schema.table(tableName, leaseColumns(), leaseConstraints(tableName)) as unknown as LeaderTable,
  };
}
