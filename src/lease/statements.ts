/**
 * Every statement on the lease table, built with Drizzle so they run unchanged on any Drizzle
 * Postgres driver. Times are the database's: leases start at and are compared with Postgres
 * `now()`, and the time left is computed by the server, so no application clock is ever
 * compared with the database clock (safety rule 1).
 *
 * The three hot statements (elect, renew, resign) are built once per database object and
 * table with placeholders and prepared (prepared.ts): a handoff is two of them back to back.
 */
import { and, eq, gt, lte, type SQL, sql } from 'drizzle-orm';
import { notifyRowSql } from '../listen/payload.js';
import type { LeaderTable } from '../schema.js';
import type { LeaderDatabase, LeaderInfo } from '../types.js';
import { believed } from './answers.js';
import { preparedOnce } from './prepared.js';
import { RESERVED_PREFIX } from './reserved.js';

export type ElectResult =
  | { readonly won: true; readonly lease: LeaderInfo }
  /** `holder` is null when the row changed under a concurrent election and could not be read in the same statement. */
  | { readonly won: false; readonly holder: LeaderInfo | null };

export type ElectInput = {
  readonly name: string;
  readonly leaderId: string;
  readonly ttlMs: number;
  readonly channel: string | null;
};

/** One exact leadership: renew and resign touch this term of this leader and nothing else (safety rule 3). */
export type TermInput = {
  readonly name: string;
  readonly leaderId: string;
  readonly term: number;
};

const p = {
  name: sql.placeholder('name'),
  leaderId: sql.placeholder('leaderId'),
  term: sql.placeholder('term'),
  ttlMs: sql.placeholder('ttlMs'),
  channel: sql.placeholder('channel'),
};

/** `now()` + the `ttlMs` placeholder: the end of a lease started by this statement (shared with batch.ts). */
export const leaseEnd = (): SQL => sql`now() + ${p.ttlMs} * interval '1 millisecond'`;

/** Time left, computed by the server (shared with batch.ts). */
export const remainingMsOf = (expiresAt: unknown): SQL<number> =>
  sql<number>`(extract(epoch from (${expiresAt} - now())) * 1000)::float8`.mapWith(Number);

/** The lease columns every read returns, with the server-computed time left. */
function leaseFields(table: LeaderTable) {
  return {
    name: table.name,
    leaderId: table.leaderId,
    term: table.term,
    electedAt: table.electedAt,
    expiresAt: table.expiresAt,
    remainingMs: remainingMsOf(table.expiresAt).as('remaining_ms'),
    resignRequestedAt: table.resignRequestedAt,
  };
}

function toLease(row: LeaderInfo): LeaderInfo {
  return Object.freeze({
    name: row.name,
    leaderId: row.leaderId,
    term: Number(row.term),
    electedAt: row.electedAt,
    expiresAt: row.expiresAt,
    remainingMs: row.remainingMs,
    resignRequestedAt: row.resignRequestedAt ?? null,
  });
}

/**
 * Elect: one statement that wins only when no unexpired lease exists, in two halves that
 * Postgres runs against the same snapshot:
 *
 * - `taken`: an expired row is overwritten in place with a fresh term (`SET term = DEFAULT`
 *   draws from the identity sequence). An UPDATE reads before it locks, so a live lease (the
 *   common case: a follower polling) is never locked at all. An expired one is locked FOR UPDATE
 *   (the SET names `term`, a key column), which waits for the holder's open lease-checked
 *   transactions, and the WHERE is checked again on the row as it is then: a lease renewed
 *   meanwhile is left alone. (An `INSERT ... ON CONFLICT DO UPDATE ... WHERE` would lock the row
 *   before evaluating its WHERE, so every denied follower would queue behind those transactions.)
 * - `inserted`: no row at all, so INSERT one; `ON CONFLICT DO NOTHING` takes no row lock.
 *
 * A live lease is read back in the same statement, so a denied follower learns how long to
 * sleep without a second round trip. A win NOTIFYs `elected`.
 */
function electQuery(db: LeaderDatabase, table: LeaderTable) {
  const taken = db.$with('taken').as(
    db
      .update(table)
      .set({
        leaderId: sql`${p.leaderId}`,
        electedAt: sql`now()`,
        expiresAt: leaseEnd(),
        term: sql`default`,
        resignRequestedAt: sql`null`,
      } as Record<string, SQL>)
      .where(and(eq(table.name, p.name), lte(table.expiresAt, sql`now()`)))
      .returning(),
  );
  const inserted = db
    .$with('inserted')
    .as(
      db
        .insert(table)
        .values({ name: p.name, leaderId: p.leaderId, electedAt: sql`now()`, expiresAt: leaseEnd() })
        .onConflictDoNothing({ target: table.name })
        .returning(),
    );
  // At most one of the two returns a row: `taken` needs a row to exist, `inserted` needs none.
  const won = {
    name: sql`coalesce(${taken.name}, ${inserted.name})`,
    leaderId: sql`coalesce(${taken.leaderId}, ${inserted.leaderId})`,
    term: sql`coalesce(${taken.term}, ${inserted.term})`,
    electedAt: sql`coalesce(${taken.electedAt}, ${inserted.electedAt})`,
    expiresAt: sql`coalesce(${taken.expiresAt}, ${inserted.expiresAt})`,
  };
  // One row always comes back: the won lease, else the live lease read from the statement's
  // snapshot. Postgres only allows a data-modifying WITH at the top level, hence joins from a
  // one-row relation rather than a UNION.
  const current = table;
  return db
    .with(taken, inserted)
    .select({
      wonTerm: sql<number | null>`${won.term}`,
      name: sql<string>`coalesce(${won.name}, ${current.name})`,
      leaderId: sql<string>`coalesce(${won.leaderId}, ${current.leaderId})`,
      term: sql<number>`coalesce(${won.term}, ${current.term})`.mapWith(Number),
      electedAt: sql<Date>`coalesce(${won.electedAt}, ${current.electedAt})`.mapWith(current.electedAt),
      expiresAt: sql<Date>`coalesce(${won.expiresAt}, ${current.expiresAt})`.mapWith(current.expiresAt),
      remainingMs: remainingMsOf(sql`coalesce(${won.expiresAt}, ${current.expiresAt})`),
      resignRequestedAt: sql<Date | null>`case when ${won.term} is not null then null else ${current.resignRequestedAt} end`.mapWith(
        current.resignRequestedAt,
      ),
      notified: sql<string | null>`case when ${won.term} is not null then ${notifyRowSql(p.channel, 'elected', won)}::text end`,
    })
    .from(sql`(select 1) as "one"`)
    .leftJoin(taken, sql`true`)
    .leftJoin(inserted, sql`true`)
    .leftJoin(current, eq(current.name, p.name));
}

/**
 * Renew: the conditional-renew UPSERT. The `setWhere` compares the STORED row
 * (`river_leader.leader_id`, `river_leader.term`, `river_leader.expires_at`) with the caller.
 * Comparing `excluded.leader_id` with the caller's id instead is always true and lets a
 * non-leader extend the real leader's lease and believe it won (River #197).
 *
 * No row back: the lease is lost. A row with another term: the old row was gone, the INSERT
 * path ran and this caller now holds a new term.
 */
export function renewQuery(db: LeaderDatabase, table: LeaderTable) {
  return db
    .insert(table)
    .values({ name: p.name, leaderId: p.leaderId, electedAt: sql`now()`, expiresAt: leaseEnd() })
    .onConflictDoUpdate({
      target: table.name,
      set: { expiresAt: leaseEnd() },
      setWhere: and(eq(table.leaderId, p.leaderId), eq(table.term, p.term), gt(table.expiresAt, sql`now()`)),
    })
    .returning(leaseFields(table));
}

/**
 * Resign: delete exactly the caller's term and NOTIFY in the same statement. The NOTIFY is
 * driven by the deleted row, so nobody is woken for a lease that still exists, and a deletion
 * is never unannounced (both commit or neither does).
 */
function resignQuery(db: LeaderDatabase, table: LeaderTable) {
  const deleted = db.$with('deleted').as(
    db
      .delete(table)
      .where(and(eq(table.name, p.name), eq(table.leaderId, p.leaderId), eq(table.term, p.term)))
      .returning(),
  );
  return db
    .with(deleted)
    .select({ notified: sql<string>`${notifyRowSql(p.channel, 'resigned', deleted)}::text` })
    .from(deleted);
}

export async function elect(db: LeaderDatabase, table: LeaderTable, input: ElectInput): Promise<ElectResult> {
  const [row] = await preparedOnce(db, table, 'elect', electQuery).execute(input);
  if (!row || row.term == null || Number.isNaN(row.term)) return { won: false, holder: null };
  const lease = toLease(row);
  if (row.wonTerm != null)
    return { won: true, lease: believed(lease, { statement: 'election', names: input.name, leaderId: input.leaderId }) };
  return { won: false, holder: believed(lease, { statement: 'election', names: input.name }) };
}

export async function renew(
  db: LeaderDatabase,
  table: LeaderTable,
  input: TermInput & { readonly ttlMs: number },
): Promise<LeaderInfo | null> {
  const [row] = await preparedOnce(db, table, 'renew', renewQuery).execute(input);
  return row
    ? believed(toLease(row), { statement: 'renewal', names: input.name, leaderId: input.leaderId, atLeastTerm: input.term })
    : null;
}

export async function resign(
  db: LeaderDatabase,
  table: LeaderTable,
  input: TermInput & { readonly channel: string | null },
): Promise<boolean> {
  const rows = await preparedOnce(db, table, 'resign', resignQuery).execute(input);
  return rows.length > 0;
}

/** The lease stored for a name, expired or not. */
export async function readLease(db: LeaderDatabase, table: LeaderTable, name: string): Promise<LeaderInfo | null> {
  const rows = await db.select(leaseFields(table)).from(table).where(eq(table.name, name));
  return rows[0] ? toLease(rows[0]) : null;
}

/** Every stored lease, expired or not, ordered by name; the library's own rows only with `internal`. */
export async function readLeases(db: LeaderDatabase, table: LeaderTable, options: { internal: boolean }): Promise<LeaderInfo[]> {
  const rows = await db
    .select(leaseFields(table))
    .from(table)
    .where(options.internal ? undefined : sql`not starts_with(${table.name}, ${RESERVED_PREFIX})`)
    .orderBy(table.name);
  return rows.map(toLease);
}

/**
 * A forced handoff: flags the live lease of `name` (of exactly `term`, when given) and NOTIFYs
 * `request_resign` in the same statement. An UPDATE, so it needs write privilege on the table:
 * a role that can only connect can send the notification, never the request (safety rule 5).
 * Returns the leadership that was asked, or null when no live lease matched.
 */
export async function requestResign(
  db: LeaderDatabase,
  table: LeaderTable,
  input: { name: string; term?: number; channel: string | null },
): Promise<{ term: number; leaderId: string } | null> {
  const asked = db.$with('asked').as(
    db
      .update(table)
      .set({ resignRequestedAt: sql`now()` })
      .where(
        and(eq(table.name, input.name), gt(table.expiresAt, sql`now()`), input.term === undefined ? undefined : eq(table.term, input.term)),
      )
      .returning(),
  );
  const channel = sql.placeholder('channel');
  const [row] = await db
    .with(asked)
    .select({ term: asked.term, leaderId: asked.leaderId, notified: sql<string>`${notifyRowSql(channel, 'request_resign', asked)}::text` })
    .from(asked)
    .execute({ channel: input.channel });
  return row ? { term: Number(row.term), leaderId: row.leaderId } : null;
}

/** Sends `payload` on `channel` (the LISTEN delivery probe). */
export async function notify(db: LeaderDatabase, channel: string, ...payloads: string[]): Promise<void> {
  // One statement, one commit: listeners hear the payloads in this order (the select list is evaluated left to right).
  const fields = Object.fromEntries(payloads.map((payload, i) => [`n${i}`, sql<string>`pg_notify(${channel}, ${payload})::text`]));
  await db.select(fields).from(sql`(select 1) as one`);
}
