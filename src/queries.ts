/**
 * Every statement the elector, the watchers and the CLI send, built with Drizzle so they run
 * unchanged on any Drizzle Postgres driver. Times are the database's: leases start at and are
 * compared with Postgres `now()`, and remaining lease time is computed by the server, so no
 * application clock is ever compared with the database clock (safety rule 1).
 */
import { createHash } from 'node:crypto';
import { and, eq, gt, lte, type SQL, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { NOTIFICATION_VERSION } from './notification.js';
import type { LeaderTable } from './schema.js';

/** Any Drizzle PostgreSQL database object (postgres.js, node-postgres, HTTP drivers, ...). */
// biome-ignore lint/suspicious/noExplicitAny: any schema and driver result shape is accepted
export type LeaderDatabase = PgDatabase<PgQueryResultHKT, any, any>;

/** A lease as stored, with the server-computed time left. */
export interface LeaseRecord {
  name: string;
  leaderId: string;
  term: number;
  electedAt: Date;
  expiresAt: Date;
  /** `expires_at - now()` in ms as the database saw it when the row was read; negative once expired. */
  remainingMs: number;
}

export type ElectResult =
  | { won: true; lease: LeaseRecord }
  /** `holder` is null when the row changed under a concurrent election and could not be read in the same statement. */
  | { won: false; holder: LeaseRecord | null };

/**
 * The three hot statements (elect, renew, resign) are built once per database object and table
 * with placeholders and prepared: building a Drizzle query costs more than the round trip
 * itself on loopback, and a handoff is two of these statements back to back.
 */
const p = {
  name: sql.placeholder('name'),
  leaderId: sql.placeholder('leaderId'),
  term: sql.placeholder('term'),
  ttlMs: sql.placeholder('ttlMs'),
  channel: sql.placeholder('channel'),
};

const leaseEnd = (): SQL => sql`now() + ${p.ttlMs} * interval '1 millisecond'`;

function remainingMs(table: LeaderTable | { expiresAt: unknown }): SQL.Aliased<number> {
  return sql<number>`(extract(epoch from (${(table as LeaderTable).expiresAt} - now())) * 1000)::float8`.mapWith(Number).as('remaining_ms');
}

function notifyPayload(action: 'elected' | 'resigned', row: LeaderTable): SQL {
  return sql`pg_notify(${p.channel}, json_build_object('v', ${sql.raw(String(NOTIFICATION_VERSION))}, 'action', ${sql.raw(`'${action}'`)}, 'name', ${row.name}, 'leaderId', ${row.leaderId}, 'term', ${row.term})::text)`;
}

/**
 * Elect: one statement that wins only when no unexpired lease exists. An expired row is
 * overwritten in place with a fresh term (`SET term = DEFAULT` draws from the identity
 * sequence); a live one is left untouched and read back in the same statement, so a
 * denied follower learns how long to sleep without a second round trip. A win NOTIFYs
 * `elected` for watchers.
 */
function electQuery(db: LeaderDatabase, table: LeaderTable) {
  const won = db.$with('won').as(
    db
      .insert(table)
      .values({ name: p.name, leaderId: p.leaderId, electedAt: sql`now()`, expiresAt: leaseEnd() })
      .onConflictDoUpdate({
        target: table.name,
        // `excluded` is only ever used here, in SET, to copy the proposed row; never in a WHERE.
        set: {
          leaderId: sql`excluded.leader_id`,
          electedAt: sql`excluded.elected_at`,
          expiresAt: sql`excluded.expires_at`,
          term: sql`default`,
        } as Record<string, SQL>,
        setWhere: lte(table.expiresAt, sql`now()`),
      })
      .returning(),
  );
  // One row always comes back: the won lease when the INSERT or the overwrite ran, else the
  // live lease read from the statement's snapshot. Postgres only allows a data-modifying
  // WITH at the top level, hence a join from a one-row relation rather than a UNION.
  const current = table;
  return db
    .with(won)
    .select({
      wonTerm: won.term,
      name: sql<string>`coalesce(${won.name}, ${current.name})`,
      leaderId: sql<string>`coalesce(${won.leaderId}, ${current.leaderId})`,
      term: sql<number>`coalesce(${won.term}, ${current.term})`.mapWith(Number),
      electedAt: sql<Date>`coalesce(${won.electedAt}, ${current.electedAt})`.mapWith(current.electedAt),
      expiresAt: sql<Date>`coalesce(${won.expiresAt}, ${current.expiresAt})`.mapWith(current.expiresAt),
      remainingMs: sql<number>`(extract(epoch from (coalesce(${won.expiresAt}, ${current.expiresAt}) - now())) * 1000)::float8`.mapWith(
        Number,
      ),
      notified: sql<
        string | null
      >`case when ${won.term} is not null then ${notifyPayload('elected', won as unknown as LeaderTable)}::text end`,
    })
    .from(sql`(select 1) as "one"`)
    .leftJoin(won, sql`true`)
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
    .select({ notified: sql<string>`${notifyPayload('resigned', deleted as unknown as LeaderTable)}::text` })
    .from(deleted);
}

/** A prepared statement's name must be unique per connection and text (node-postgres checks): derive it from both. */
function prepare<T extends { toSQL(): { sql: string }; prepare(name: string): unknown }>(kind: string, query: T) {
  const digest = createHash('sha1').update(query.toSQL().sql).digest('hex').slice(0, 12);
  return query.prepare(`drizzle_leader_${kind}_${digest}`) as ReturnType<T['prepare']>;
}

function buildStatements(db: LeaderDatabase, table: LeaderTable) {
  return {
    elect: prepare('elect', electQuery(db, table)),
    renew: prepare('renew', renewQuery(db, table)),
    resign: prepare('resign', resignQuery(db, table)),
  };
}

const statementCache = new WeakMap<LeaderDatabase, WeakMap<LeaderTable, ReturnType<typeof buildStatements>>>();

function statements(db: LeaderDatabase, table: LeaderTable): ReturnType<typeof buildStatements> {
  const byTable = statementCache.get(db) ?? new WeakMap<LeaderTable, ReturnType<typeof buildStatements>>();
  statementCache.set(db, byTable);
  const built = byTable.get(table) ?? buildStatements(db, table);
  byTable.set(table, built);
  return built;
}

export async function elect(
  db: LeaderDatabase,
  table: LeaderTable,
  input: { name: string; leaderId: string; ttlMs: number; channel: string },
): Promise<ElectResult> {
  const [row] = await statements(db, table).elect.execute(input);
  if (!row || row.term == null || Number.isNaN(row.term)) return { won: false, holder: null };
  const lease = toLease(row);
  return row.wonTerm != null ? { won: true, lease } : { won: false, holder: lease };
}

export async function renew(
  db: LeaderDatabase,
  table: LeaderTable,
  input: { name: string; leaderId: string; term: number; ttlMs: number },
): Promise<LeaseRecord | null> {
  const [row] = await statements(db, table).renew.execute(input);
  return row ? toLease(row) : null;
}

/** A renewal that could not start, or finish, before its deadline. */
export class DeadlineExceeded extends Error {
  override name = 'DeadlineExceeded';
  constructor(
    message: string,
    /** Set when it never got a connection: how long it waited for one. */
    readonly waitedForConnectionMs?: number,
  ) {
    super(message);
  }
}

/**
 * Renew with deadlines derived from the remaining trust window: a bounded wait for a
 * connection (a saturated shared pool must not queue the renewal until trust runs out), and a
 * server-side `statement_timeout` and `lock_timeout` for the statement (an operator's open
 * transaction holding the row must not make a renewal return after the deadline). Costs a
 * transaction (BEGIN, set_config, the UPSERT, COMMIT): renewals are not on the handoff path.
 * `waitedMs` is how long it waited for a connection.
 */
export async function renewWithin(
  db: LeaderDatabase,
  table: LeaderTable,
  input: { name: string; leaderId: string; term: number; ttlMs: number },
  deadlineAt: number,
  now: () => number,
): Promise<{ record: LeaseRecord | null; waitedMs: number }> {
  const startedAt = now();
  let abandoned = false;
  let waitedMs = 0;
  let connected = false;
  let timer: NodeJS.Timeout | undefined;
  const work = db.transaction(async (tx) => {
    connected = true;
    waitedMs = now() - startedAt;
    // The server gives up a little before the client does, so a timeout arrives as the server's
    // own error (lock_timeout / statement_timeout) rather than as an abandoned statement.
    const left = deadlineAt - now();
    const budget = Math.floor(left - Math.min(100, left / 10));
    if (abandoned || budget < 1) throw new DeadlineExceeded(`renewal got a connection after ${Math.round(waitedMs)} ms, past its deadline`);
    await tx.execute(
      sql`select set_config('statement_timeout', ${String(budget)}, true), set_config('lock_timeout', ${String(budget)}, true)`,
    );
    const [row] = await prepare('renew', renewQuery(tx as unknown as LeaderDatabase, table)).execute(input);
    return row ? toLease(row) : null;
  });
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        abandoned = true;
        const waited = now() - startedAt;
        reject(
          connected
            ? new DeadlineExceeded(`renewal did not finish within its ${Math.round(waited)} ms deadline`)
            : new DeadlineExceeded(`renewal waited ${Math.round(waited)} ms for a connection and never got one`, waited),
        );
      },
      Math.max(0, deadlineAt - startedAt),
    );
  });
  work.catch(() => {}); // settled later if abandoned; its result is no longer wanted
  try {
    const record = await Promise.race([work, deadline]);
    return { record, waitedMs };
  } finally {
    clearTimeout(timer);
  }
}

export async function resign(
  db: LeaderDatabase,
  table: LeaderTable,
  input: { name: string; leaderId: string; term: number; channel: string },
): Promise<boolean> {
  const rows = await statements(db, table).resign.execute(input);
  return rows.length > 0;
}

/** The lease stored for a name, expired or not, with the server-computed time left. */
function leaseFields(table: LeaderTable) {
  return {
    name: table.name,
    leaderId: table.leaderId,
    term: table.term,
    electedAt: table.electedAt,
    expiresAt: table.expiresAt,
    remainingMs: remainingMs(table),
  };
}

export async function readLease(db: LeaderDatabase, table: LeaderTable, name: string): Promise<LeaseRecord | null> {
  const rows = await db.select(leaseFields(table)).from(table).where(eq(table.name, name));
  return rows[0] ? toLease(rows[0]) : null;
}

/** Every stored lease, ordered by name (for operators). */
export async function listLeases(db: LeaderDatabase, table: LeaderTable): Promise<LeaseRecord[]> {
  const rows = await db.select(leaseFields(table)).from(table).orderBy(table.name);
  return rows.map(toLease);
}

/** Deletes leases that have expired (by the database clock); returns how many. */
export async function deleteExpiredLeases(db: LeaderDatabase, table: LeaderTable): Promise<number> {
  const rows = await db.delete(table).where(lte(table.expiresAt, sql`now()`)).returning({ name: table.name });
  return rows.length;
}

/** Sends a leadership notification (used for `request_resign`). */
export async function sendNotification(db: LeaderDatabase, channel: string, payload: string): Promise<void> {
  await db.select({ notified: sql<string>`pg_notify(${channel}, ${payload})::text` }).from(sql`(select 1) as one`);
}

function toLease(row: {
  name: string;
  leaderId: string;
  term: number;
  electedAt: Date;
  expiresAt: Date;
  remainingMs: number;
}): LeaseRecord {
  return {
    name: row.name,
    leaderId: row.leaderId,
    term: Number(row.term),
    electedAt: row.electedAt,
    expiresAt: row.expiresAt,
    remainingMs: row.remainingMs,
  };
}
