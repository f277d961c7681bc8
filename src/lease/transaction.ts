/**
 * The statements of lease-checked writes: work that commits only while one exact term holds
 * the lease, and that no successor can overtake.
 *
 * # Why FOR KEY SHARE, and why it is enough
 *
 * A lease-checked transaction locks its term's row `FOR KEY SHARE` before the caller's work
 * runs, and keeps the lock until it commits or rolls back. The lease table has
 * `unique (name, term)` (schema.ts), which makes `term` a key column, so:
 *
 * - a takeover sets a new `term` (an UPDATE of a key column: FOR UPDATE) and a resignation
 *   deletes the row (FOR UPDATE); both wait for every open lease-checked transaction of the
 *   holder. No other term can be elected until they end: the writes of two terms never
 *   interleave, whatever the clocks or pauses of the processes involved.
 * - the holder's renewal sets only `expires_at` (FOR NO KEY UPDATE), which FOR KEY SHARE does
 *   not block: a transaction that runs for longer than the renew interval costs the leader
 *   nothing. (`FOR SHARE` would make every renewal wait for it; plain FOR KEY SHARE without the
 *   unique key would not block a takeover at all.)
 * - `requestResign` sets only `resign_requested_at`: not blocked either.
 *
 * The check is made by the database at the moment the lock is taken (the lease must be this
 * term's and unexpired by the server's `now()`); from then on the lock, not any clock, keeps
 * the term in place. What remains is to bound how long a transaction can hold the lock: see
 * `lockLease` and the elector's `transaction()`.
 */
import { and, eq, gt, type SQL, sql } from 'drizzle-orm';
import { getTableConfig, QueryBuilder } from 'drizzle-orm/pg-core';
import type { LeaderTable } from '../schema.js';
import type { LeaderDatabase } from '../types.js';
import type { TermInput } from './statements.js';

/** What identifies one open transaction on the server: its backend and its start time. */
export interface OpenTransaction {
  readonly pid: number;
  /** `now()` inside the transaction (its start), as text exactly as the server printed it. */
  readonly startedAt: string;
}

/** Anything that runs Drizzle queries: a database object or a transaction of it. */
type Queryable = Pick<LeaderDatabase, 'select'>;

/** The rule for this term holding an unexpired lease, by the server's clock at `at`. */
function termHolds(table: LeaderTable, term: TermInput, at: SQL): SQL {
  return and(eq(table.name, term.name), eq(table.leaderId, term.leaderId), eq(table.term, term.term), gt(table.expiresAt, at)) as SQL;
}

/**
 * The first statement of a lease-checked transaction: locks the term's row FOR KEY SHARE if
 * the term holds it unexpired, and in the same round trip sets the transaction's own bounds
 * (`SET LOCAL`, so nothing outlives the transaction):
 *
 * - `statement_timeout` and `idle_in_transaction_session_timeout`: a process frozen or cut off
 *   inside the transaction is ended by the server, and its lock released, without any help
 *   from the process (a statement is cancelled, then the idle session ended; the idle bound
 *   is longer where the driver does not survive that, so a live process acts first);
 * - `transaction_timeout` (PostgreSQL 17 and later): the whole transaction, however busy, and
 *   whatever state its backend is in. The two above count only from a Sync: a backend left
 *   between the halves of a statement (postgres.js sends Parse + Describe, waits for the
 *   answer, then Bind + Execute + Sync) waits for the client with neither armed, and only this
 *   ends it. As long as the idle bound where the driver does not survive the server ending a
 *   session mid-query, so a live process, which never sits there, always acts first.
 *
 * It must be the transaction's first statement: under REPEATABLE READ and SERIALIZABLE the
 * snapshot is taken by it, so the lease it checks is the lease the transaction sees.
 * Returns null when the term does not hold the lease.
 */
export async function lockLease(
  tx: Queryable,
  table: LeaderTable,
  term: TermInput,
  /** `serverBoundMs`: the idle and transaction timeouts (one value: both end the session). */
  bounds: { readonly timeoutMs: number; readonly serverBoundMs: number },
): Promise<OpenTransaction | null> {
  const ms = String(Math.max(1, Math.ceil(bounds.timeoutMs)));
  const sessionMs = String(Math.max(1, Math.ceil(bounds.serverBoundMs)));
  const whole = sql`case when current_setting('server_version_num')::int >= 170000 then set_config('transaction_timeout', ${sessionMs}, true) end`;
  const rows = await tx
    .select({
      term: table.term,
      pid: sql<number>`pg_backend_pid()`.mapWith(Number),
      startedAt: sql<string>`now()::text`,
      bounded: sql<string>`concat_ws(',',
        set_config('statement_timeout', ${ms}, true),
        set_config('idle_in_transaction_session_timeout', ${sessionMs}, true),
        ${whole})`,
    })
    .from(table)
    .where(termHolds(table, term, sql`now()`))
    .for('key share');
  const row = rows[0];
  return row ? { pid: row.pid, startedAt: row.startedAt } : null;
}

/**
 * Ends one open transaction from another connection, and only that one: the backend is
 * signalled only while it is still inside the transaction that started at `startedAt`, so a
 * connection that has since committed and gone back to the application's pool is never
 * touched. `terminate` ends its session; `cancel` only its running statement (which aborts the
 * transaction; an idle one is left to its idle timeout). Either needs no privilege beyond being
 * the same role. Returns whether a backend was signalled.
 */
export async function endTransaction(db: Queryable, open: OpenTransaction, how: 'terminate' | 'cancel'): Promise<boolean> {
  const signal = how === 'terminate' ? sql`pg_terminate_backend(pid)` : sql`pg_cancel_backend(pid)`;
  const rows = await db
    .select({ ended: sql<boolean>`${signal}` })
    .from(sql`pg_stat_activity`)
    .where(sql`pid = ${open.pid} and xact_start = ${open.startedAt}::timestamptz${how === 'cancel' ? sql` and state = 'active'` : sql``}`);
  return rows.some((row) => row.ended === true);
}

/**
 * The lighter form: a condition for the WHERE of one write, true only while `term` holds the
 * lease unexpired at the statement's own start, and locking the row FOR KEY SHARE until the
 * write's transaction ends (for a single statement: until it commits). Same guarantee as a
 * lease-checked transaction for that statement; no bounds of its own.
 */
export function leaseHeldSql(table: LeaderTable, term: TermInput): SQL {
  const locked = new QueryBuilder()
    .select({ one: sql`1` })
    .from(table)
    .where(termHolds(table, term, sql`statement_timestamp()`))
    .for('key share');
  return sql`exists (${locked})`;
}

/**
 * Whether the table has the unique key on `term` that makes a takeover wait for lease-checked
 * transactions (migration 0002). Without it, FOR KEY SHARE would not block a takeover at all.
 * Only the kind of unique index PostgreSQL documents as usable for foreign keys (immediate, not
 * partial, on plain columns) is relied on; anything else is refused rather than guessed at.
 */
export async function hasLeaseKey(db: Queryable, table: LeaderTable): Promise<boolean> {
  const { name, schema } = getTableConfig(table);
  // Any unique index PostgreSQL counts as a key (immediate, not partial, on plain columns), as a
  // constraint or a bare CREATE UNIQUE INDEX alike.
  const rows = await db
    .select({ found: sql<boolean>`true` })
    .from(sql`pg_index i`)
    .innerJoin(sql`pg_attribute a`, sql`a.attrelid = i.indrelid and a.attnum = any (i.indkey)`)
    .where(
      sql`i.indrelid = to_regclass(quote_ident(${schema ?? 'public'}) || '.' || quote_ident(${name})) and i.indisunique and i.indimmediate and i.indpred is null and i.indexprs is null and a.attname = 'term'`,
    )
    .limit(1);
  return rows.length > 0;
}
