/**
 * Batched statements on the lease table, for a group that campaigns for many names at once:
 * one election for every name it wants, one renewal for every leadership it holds, one
 * resignation for every leadership it gives up, and one membership heartbeat. Each is ONE
 * statement whatever the number of names, built with Drizzle like the single elector's, and
 * each keeps the single elector's guarantees per name:
 *
 * - Renewal is the conditional-renew UPSERT: `DO UPDATE ... WHERE` compares the STORED row's
 *   `leader_id` and `term` with the caller's leadership of THAT name (looked up in the
 *   caller's (name, term) list by the stored row's name), never `excluded.*` with a parameter
 *   (River #197). A stale term for a name in the batch matches no stored row and renews nothing.
 * - Renewal SETs only `expires_at`, a non-key column, so it takes FOR NO KEY UPDATE row locks
 *   and is never blocked by the holder's own FOR KEY SHARE locks (lease-checked transactions,
 *   with a UNIQUE (name, term) making `term` a key). Elections SET `term = DEFAULT` (a new
 *   identity value, a key) and take FOR UPDATE.
 * - One locked row never holds up the other names: each statement first locks the rows it
 *   will change with SKIP LOCKED, and changes only those (plus names that have no row at all).
 *   A skipped name is reported as such, so its leadership is neither renewed nor lost: it is
 *   retried, and its own trust window decides.
 * - An election never even tries to lock a live lease: rows that are live in the statement's
 *   snapshot are filtered out before the INSERT, so followers never queue behind a leader's
 *   open transactions. The `DO UPDATE ... WHERE expires_at <= now()` still decides, on the
 *   newest row version, for a row that changed after the snapshot.
 *
 * Lists travel as one JSON parameter (`json_to_recordset`), which both drivers send as text:
 * no driver-specific array encoding, and one statement text whatever the batch size.
 */
import { and, eq, type SQL, sql } from 'drizzle-orm';
import { bigint, getTableConfig, pgSchema, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { notifyRowSql } from '../listen/payload.js';
import type { LeaderTable } from '../schema.js';
import type { LeaderDatabase, LeaderInfo } from '../types.js';
import { believed } from './answers.js';
import { preparedOnce } from './prepared.js';
import { leaseEnd, remainingMsOf } from './statements.js';

/** One leadership of the caller: renew and resign touch this term of this name and nothing else. */
export interface NameTerm {
  readonly name: string;
  readonly term: number;
}

export type BatchElectOutcome =
  | { readonly name: string; readonly won: true; readonly lease: LeaderInfo }
  /** `holder` is null when no row was visible (a concurrent election), or when the row was locked and skipped. */
  | { readonly name: string; readonly won: false; readonly holder: LeaderInfo | null };

export type BatchRenewOutcome =
  /** The lease of this term was extended; or, when `lease.term` differs, the row was gone and a new term was inserted. */
  | { readonly name: string; readonly kind: 'renewed'; readonly lease: LeaderInfo }
  /** The row is another term's, another leader's, or expired: this leadership is over. */
  | { readonly name: string; readonly kind: 'denied' }
  /** The row was locked by another session: not renewed this time, not lost either. */
  | { readonly name: string; readonly kind: 'skipped' };

export interface MemberRow {
  readonly name: string;
  readonly leaderId: string;
  readonly remainingMs: number;
  /**
   * The row's stored `expires_at`, exactly as the database holds it (text): equal between two
   * reads only if the member wrote nothing in between. Compared with itself, never with a clock.
   */
  readonly expiresAt: string;
}

/**
 * Every value is a placeholder: each statement is built once per database object and table and
 * prepared (prepared.ts), and a call only binds its lists (JSON text) and scalars. `ttlMs` is
 * the placeholder of `leaseEnd` (statements.ts).
 */
const b = {
  /** `[{name}]`: the names of an election. */
  names: sql.placeholder('names'),
  /** `[{name, term}]`: the leaderships of a renewal or resignation. */
  pairs: sql.placeholder('pairs'),
  /** `[{name}]`: the names a heartbeat looks at in passing. */
  peek: sql.placeholder('peek'),
  leaderId: sql.placeholder('leaderId'),
  channel: sql.placeholder('channel'),
  memberName: sql.placeholder('memberName'),
  prefix: sql.placeholder('prefix'),
};

const pairsOf = (): SQL => sql`json_to_recordset(${b.pairs}::json) as p(name text, term bigint)`;
const namesOf = (list: typeof b.names | typeof b.peek): SQL => sql`json_to_recordset(${list}::json) as p(name text)`;
const namesJson = (names: readonly string[]): string => JSON.stringify(names.map((name) => ({ name })));
const pairsJson = (leaderships: readonly NameTerm[]): string => JSON.stringify(leaderships.map(({ name, term }) => ({ name, term })));

function toLease(row: {
  name: string;
  leaderId: string;
  term: number | string;
  electedAt: Date;
  expiresAt: Date;
  remainingMs: number;
  resignRequestedAt: Date | null;
}): LeaderInfo {
  return Object.freeze({
    name: row.name,
    leaderId: row.leaderId,
    term: Number(row.term),
    electedAt: row.electedAt,
    expiresAt: row.expiresAt,
    remainingMs: Number(row.remainingMs),
    resignRequestedAt: row.resignRequestedAt ?? null,
  });
}

/**
 * The same table seen by Drizzle with `term` marked generated, so `insert(...).select(...)`
 * lists only the columns a row may be given (Drizzle lists an identity column too, and
 * PostgreSQL refuses a value for a GENERATED ALWAYS one). Only the Drizzle view differs: the
 * SQL names the same table and columns, and `term` still comes from the identity sequence.
 */
function insertable(table: LeaderTable): LeaderTable {
  let shaped = insertableCache.get(table);
  if (!shaped) {
    const { name, schema } = getTableConfig(table);
    const columns = {
      name: text('name').primaryKey(),
      leaderId: text('leader_id').notNull(),
      electedAt: timestamp('elected_at', { withTimezone: true, mode: 'date' }).notNull(),
      expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
      term: bigint('term', { mode: 'number' }).notNull().generatedAlwaysAs(sql`default`),
      resignRequestedAt: timestamp('resign_requested_at', { withTimezone: true, mode: 'date' }),
    };
    // Same columns and types as LeaderTable (only the Drizzle-side `generated` flag differs).
    shaped = (schema && schema !== 'public' ? pgSchema(schema).table(name, columns) : pgTable(name, columns)) as unknown as LeaderTable;
    insertableCache.set(table, shaped);
  }
  return shaped;
}

const insertableCache = new WeakMap<LeaderTable, LeaderTable>();

/** The insert's SELECT list, in the table's insertable column order (name, leader_id, elected_at, expires_at, resign_requested_at). */
function proposedRow(): SQL {
  return sql`p.name, ${b.leaderId}::text, now(), ${leaseEnd()}, null::timestamptz`;
}

/** Rows back in the order the caller listed the names (a join's output order is the planner's). */
function inInputOrder<T extends { name: string }>(names: readonly string[], rows: T[]): T[] {
  const position = new Map(names.map((name, i) => [name, i]));
  return [...rows].sort((a, b) => (position.get(a.name) ?? 0) - (position.get(b.name) ?? 0));
}

function electManyQuery(db: LeaderDatabase, table: LeaderTable) {
  // Only expired rows are locked, and only those no one else holds a lock on: a live lease is
  // never touched, and a stuck session's lock on one expired row costs only that name.
  const lockable = db.$with('lockable').as(
    db
      .select({ name: table.name })
      .from(table)
      .where(and(sql`${table.name} in (select p.name from ${namesOf(b.names)})`, sql`${table.expiresAt} <= now()`))
      .for('update', { skipLocked: true }),
  );
  const won = db.$with('won').as(
    db
      .insert(insertable(table))
      .select(
        sql`select ${proposedRow()} from ${namesOf(b.names)}
            where p.name in (select name from ${lockable})
               or not exists (select 1 from ${table} as t where t.name = p.name)`,
      )
      .onConflictDoUpdate({
        target: table.name,
        // `excluded` only copies the proposed row in SET; the WHERE reads the stored row alone.
        set: {
          leaderId: sql`excluded.leader_id`,
          electedAt: sql`excluded.elected_at`,
          expiresAt: sql`excluded.expires_at`,
          term: sql`default`,
          resignRequestedAt: sql`null`,
        } as Record<string, SQL>,
        setWhere: sql`${table.expiresAt} <= now()`,
      })
      .returning(),
  );
  return db
    .with(lockable, won)
    .select({
      name: sql<string>`p.name`,
      wonTerm: won.term,
      leaderId: sql<string>`coalesce(${won.leaderId}, ${table.leaderId})`,
      term: sql<number>`coalesce(${won.term}, ${table.term})`,
      electedAt: sql<Date>`coalesce(${won.electedAt}, ${table.electedAt})`.mapWith(table.electedAt),
      expiresAt: sql<Date>`coalesce(${won.expiresAt}, ${table.expiresAt})`.mapWith(table.expiresAt),
      remainingMs: remainingMsOf(sql`coalesce(${won.expiresAt}, ${table.expiresAt})`),
      resignRequestedAt: sql<Date | null>`case when ${won.term} is not null then null else ${table.resignRequestedAt} end`.mapWith(
        table.resignRequestedAt,
      ),
      notified: sql<string | null>`case when ${won.term} is not null then ${notifyRowSql(b.channel, 'elected', won)}::text end`,
    })
    .from(namesOf(b.names))
    .leftJoin(won, sql`${won.name} = p.name`)
    .leftJoin(table, sql`${table.name} = p.name`);
}

/**
 * One election for many names. Wins every name that has no row, or an expired one this
 * statement could lock; NOTIFYs `elected` for each win; reads back the live holder of the
 * others from the same snapshot.
 */
export async function electMany(
  db: LeaderDatabase,
  table: LeaderTable,
  input: { names: readonly string[]; leaderId: string; ttlMs: number; channel: string | null },
): Promise<BatchElectOutcome[]> {
  if (input.names.length === 0) return [];
  const rows = await preparedOnce(db, table, 'elect_many', electManyQuery).execute({
    names: namesJson(input.names),
    leaderId: input.leaderId,
    ttlMs: input.ttlMs,
    channel: input.channel,
  });
  const asked = new Set(input.names);
  return inInputOrder(input.names, rows).map((row) => {
    if (row.wonTerm != null) {
      const lease = believed(toLease({ ...row, name: row.name }), {
        statement: 'batched election',
        names: asked,
        leaderId: input.leaderId,
      });
      return { name: row.name, won: true as const, lease };
    }
    const holder = row.term == null ? null : believed(toLease({ ...row, name: row.name }), { statement: 'batched election', names: asked });
    return { name: row.name, won: false as const, holder };
  });
}

/**
 * One renewal for many leaderships. Per name: the conditional-renew UPSERT on the stored row,
 * matched against the caller's term FOR THAT NAME; sets only `expires_at`. A name whose row is
 * gone gets a fresh term by the INSERT path (reported as renewed with another term), as the
 * single elector's renewal does.
 */
export async function renewMany(
  db: LeaderDatabase,
  table: LeaderTable,
  input: { leaderships: readonly NameTerm[]; leaderId: string; ttlMs: number },
): Promise<BatchRenewOutcome[]> {
  return (await renewStatement(db, table, input, null)).outcomes;
}

/**
 * `renewMany` and `heartbeat` in ONE statement: a member that leads names renews them and its
 * membership together, so its steady state costs one statement per renew interval whatever
 * the number of names (and one more for the LISTEN connection's keepalive). Needs at least one
 * leadership: with none, use `heartbeat`. `member: null` renews the names alone.
 */
export async function renewManyWithHeartbeat(
  db: LeaderDatabase,
  table: LeaderTable,
  input: { leaderships: readonly NameTerm[]; leaderId: string; ttlMs: number; member: MemberInput | null },
): Promise<{ outcomes: BatchRenewOutcome[] } & MembershipView> {
  if (input.leaderships.length === 0 && input.member) throw new RangeError('renewManyWithHeartbeat needs at least one leadership');
  const { outcomes, membership } = await renewStatement(db, table, input, input.member);
  return { outcomes, members: membership?.members ?? [], free: membership?.free ?? [] };
}

const renewManyWithHeartbeatQuery = (db: LeaderDatabase, table: LeaderTable) => renewManyQuery(db, table, true);

/** The batched renewal, alone or (`withMember`) with the membership heartbeat. */
function renewManyQuery(db: LeaderDatabase, table: LeaderTable, withMember = false) {
  // FOR NO KEY UPDATE: the same lock the DO UPDATE below takes, since it sets no key column;
  // it does not conflict with FOR KEY SHARE, so only a foreign writer's lock makes a row skipped.
  const lockable = db
    .$with('lockable')
    .as(
      db
        .select({ name: table.name })
        .from(table)
        .where(sql`${table.name} in (select p.name from ${pairsOf()})`)
        .for('no key update', { skipLocked: true }),
    );
  const renewed = db.$with('renewed').as(
    db
      .insert(insertable(table))
      .select(
        sql`select ${proposedRow()} from ${pairsOf()}
            where p.name in (select name from ${lockable})
               or not exists (select 1 from ${table} as t where t.name = p.name)`,
      )
      .onConflictDoUpdate({
        target: table.name,
        set: { expiresAt: sql`excluded.expires_at` },
        // The STORED row (its leader_id, its term, its expiry) against the caller's leadership
        // of the stored row's own name. Never `excluded.leader_id = $id`: always true (River #197).
        setWhere: and(
          eq(table.leaderId, b.leaderId),
          sql`${table.term} = (select p.term from ${pairsOf()} where p.name = ${table.name})`,
          sql`${table.expiresAt} > now()`,
        ),
      })
      .returning(),
  );
  const membership = withMember ? memberUpsert(db, table) : null;
  // The member rows (and the peeked names found free) come back as extra rows of the same
  // result, so a renewal of N names returns N + M (+ F) rows, not N copies of the membership.
  const source = membership
    ? sql`(select p.name, null::text as member_id, null::float8 as member_remaining_ms, null::text as member_expires_at, false as free from ${pairsOf()}
           union all
           ${membershipRows(table)}) as p`
    : sql`(select p.name, null::text as member_id, null::float8 as member_remaining_ms, null::text as member_expires_at, false as free from ${pairsOf()}) as p`;
  const ctes = membership ? [lockable, renewed, membership.memberLockable, membership.mine, membership.announced] : [lockable, renewed];
  return db
    .with(...ctes)
    .select({
      name: sql<string>`p.name`,
      memberId: sql<string | null>`p.member_id`,
      memberRemainingMs: sql<number | null>`p.member_remaining_ms`,
      memberExpiresAt: sql<string | null>`p.member_expires_at`,
      free: sql<boolean>`p.free`,
      term: renewed.term,
      leaderId: renewed.leaderId,
      electedAt: renewed.electedAt,
      expiresAt: renewed.expiresAt,
      remainingMs: remainingMsOf(renewed.expiresAt),
      resignRequestedAt: renewed.resignRequestedAt,
      locked: sql<boolean>`(p.name in (select name from ${lockable}))`,
      existed: sql<boolean>`exists (select 1 from ${table} as t where t.name = p.name)`,
      // Makes the (otherwise unread) announcement run: a CTE that is never read is never evaluated.
      announced: membership ? sql<number>`(select count(*) from ${membership.announced})`.mapWith(Number) : sql<number>`0`,
    })
    .from(source)
    .leftJoin(renewed, sql`${renewed.name} = p.name and p.member_id is null and not p.free`);
}

async function renewStatement(
  db: LeaderDatabase,
  table: LeaderTable,
  input: { leaderships: readonly NameTerm[]; leaderId: string; ttlMs: number },
  member: MemberInput | null,
): Promise<{ outcomes: BatchRenewOutcome[]; membership: MembershipView | null }> {
  if (input.leaderships.length === 0) return { outcomes: [], membership: member ? { members: [], free: [] } : null };
  const statement = member
    ? preparedOnce(db, table, 'renew_many_heartbeat', renewManyWithHeartbeatQuery)
    : preparedOnce(db, table, 'renew_many', renewManyQuery);
  const rows = await statement.execute({
    pairs: pairsJson(input.leaderships),
    leaderId: input.leaderId,
    ttlMs: input.ttlMs,
    ...(member ? memberParams(member) : {}),
  });
  const view = member ? membershipOf(rows) : null;
  const asked = new Set(input.leaderships.map((l) => l.name));
  const termOf = new Map(input.leaderships.map((l) => [l.name, l.term]));
  const outcomes = inInputOrder(
    input.leaderships.map((l) => l.name),
    rows.filter((row) => row.memberId === null && !row.free),
  ).map((row): BatchRenewOutcome => {
    if (row.term != null) {
      const lease = toLease({
        ...row,
        name: row.name,
        leaderId: row.leaderId!,
        electedAt: row.electedAt!,
        expiresAt: row.expiresAt!,
      } as never);
      return {
        name: row.name,
        kind: 'renewed',
        lease: believed(lease, { statement: 'batched renewal', names: asked, leaderId: input.leaderId, atLeastTerm: termOf.get(row.name) }),
      };
    }
    // A row this statement saw but could not lock belongs to someone mid-write: not a verdict.
    if (row.existed && !row.locked) return { name: row.name, kind: 'skipped' };
    return { name: row.name, kind: 'denied' };
  });
  return { outcomes, membership: view };
}

/**
 * Deletes exactly these terms of this leader and NOTIFYs `resigned` for each, in one
 * statement; rows locked by another session are skipped (returned in `skipped`) so one stuck
 * row does not keep every other name from being handed over at once.
 */
export async function resignMany(
  db: LeaderDatabase,
  table: LeaderTable,
  input: { leaderships: readonly NameTerm[]; leaderId: string; channel: string | null },
): Promise<{ released: string[]; skipped: string[] }> {
  if (input.leaderships.length === 0) return { released: [], skipped: [] };
  const rows = await preparedOnce(db, table, 'resign_many', resignManyQuery).execute({
    pairs: pairsJson(input.leaderships),
    leaderId: input.leaderId,
    channel: input.channel,
  });
  return resignOutcome(input.leaderships, rows);
}

function resignManyQuery(db: LeaderDatabase, table: LeaderTable) {
  const resign = resignStatement(db, table);
  return db.with(resign.lockable, resign.deleted).select(resign.columns).from(resign.source).leftJoin(resign.deleted, resign.joined);
}

/**
 * The parts of a batched resignation, so that leaving a group can resign in the same
 * statement: lock the caller's exact (name, term) rows (SKIP LOCKED), delete them, NOTIFY
 * `resigned` for each, and tell released from skipped (locked by another session).
 */
function resignStatement(db: LeaderDatabase, table: LeaderTable) {
  const lockable = db.$with('lockable').as(
    db
      .select({ name: table.name, term: table.term })
      .from(table)
      .where(and(eq(table.leaderId, b.leaderId), sql`(${table.name}, ${table.term}) in (select p.name, p.term from ${pairsOf()})`))
      .for('update', { skipLocked: true }),
  );
  const deleted = db.$with('deleted').as(
    db
      .delete(table)
      .where(
        and(
          eq(table.leaderId, b.leaderId),
          sql`(${table.name}, ${table.term}) in (select name, term from ${lockable})`,
          sql`(${table.name}, ${table.term}) in (select p.name, p.term from ${pairsOf()})`,
        ),
      )
      .returning(),
  );
  const columns = {
    name: sql<string>`p.name`,
    deleted: sql<boolean>`${deleted.term} is not null`,
    skipped: sql<boolean>`(${deleted.term} is null and exists (select 1 from ${table} as t where t.name = p.name and t.term = p.term and t.leader_id = ${b.leaderId}::text) and p.name not in (select name from ${lockable}))`,
    notified: sql<string | null>`case when ${deleted.term} is not null then ${notifyRowSql(b.channel, 'resigned', deleted)}::text end`,
  };
  return { lockable, deleted, columns, source: pairsOf(), joined: sql`${deleted.name} = p.name` };
}

/** Which of the leaderships a resignation released, and which it skipped (locked by another session), in the caller's order. */
function resignOutcome(leaderships: readonly NameTerm[], rows: { name: string; deleted: boolean; skipped: boolean }[]) {
  const ordered = inInputOrder(
    leaderships.map((l) => l.name),
    rows,
  );
  return { released: ordered.filter((r) => r.deleted).map((r) => r.name), skipped: ordered.filter((r) => r.skipped).map((r) => r.name) };
}

/**
 * The membership heartbeat: keeps this member's own row (a name under the group's reserved
 * prefix, one row per member) alive for `ttlMs`, and reads every live member row of the group,
 * in one statement. The row is inserted on first use (and then NOTIFYs `elected`, so the other
 * members look at once instead of at their next heartbeat); after that only `expires_at` is set.
 */
export async function heartbeat(
  db: LeaderDatabase,
  table: LeaderTable,
  input: MemberInput & { leaderId: string; ttlMs: number },
): Promise<MembershipView> {
  const rows = await preparedOnce(db, table, 'heartbeat', heartbeatQuery).execute({
    ...memberParams(input),
    leaderId: input.leaderId,
    ttlMs: input.ttlMs,
  });
  return membershipOf(rows);
}

function heartbeatQuery(db: LeaderDatabase, table: LeaderTable) {
  const { memberLockable, mine, announced } = memberUpsert(db, table);
  return db
    .with(memberLockable, mine, announced)
    .select({
      name: sql<string>`m.name`,
      memberId: sql<string | null>`m.member_id`,
      memberRemainingMs: sql<number | null>`m.member_remaining_ms`,
      memberExpiresAt: sql<string | null>`m.member_expires_at`,
      free: sql<boolean>`m.free`,
      announced: sql<number>`(select count(*) from ${announced})`.mapWith(Number),
    })
    .from(sql`(${membershipRows(table)}) as m`);
}

/** A heartbeat's parameters. */
function memberParams(member: MemberInput) {
  return { memberName: member.memberName, prefix: member.prefix, channel: member.channel, peek: namesJson(member.peek ?? []) };
}

function membershipOf(
  rows: { name: string; memberId: string | null; memberRemainingMs: number | null; memberExpiresAt: string | null; free: boolean }[],
): MembershipView {
  const members: MemberRow[] = [];
  const free: string[] = [];
  for (const row of rows) {
    if (row.free) free.push(row.name);
    else if (row.memberId !== null)
      members.push({
        name: row.name,
        leaderId: row.memberId,
        remainingMs: Number(row.memberRemainingMs),
        expiresAt: String(row.memberExpiresAt),
      });
  }
  return { members, free };
}

/** Which member row a heartbeat keeps alive, and where the group's member rows are. */
export interface MemberInput {
  readonly memberName: string;
  readonly prefix: string;
  readonly channel: string | null;
  /**
   * Names held by other members, to be looked at in passing: the statement also returns those
   * of them that have no live lease now (`free`). A read only, without locks, so it costs no
   * statement of its own and holds up no renewal.
   */
  readonly peek?: readonly string[];
}

/** The members' rows, and the peeked names found free, as one statement returns them. */
export interface MembershipView {
  readonly members: MemberRow[];
  readonly free: string[];
}

/** Live member rows (member_id set) and peeked names without a live lease (free), as extra rows of a result. */
function membershipRows(table: LeaderTable): SQL {
  return sql`select t.name, t.leader_id as member_id, ${remainingMsOf(sql`t.expires_at`)} as member_remaining_ms,
                    t.expires_at::text as member_expires_at, false as free
             from ${table} as t where starts_with(t.name, ${b.prefix}::text) and t.expires_at > now()
             union all
             select p.name, null::text, null::float8, null::text, true from ${namesOf(b.peek)}
             where not exists (select 1 from ${table} as t where t.name = p.name and t.expires_at > now())`;
}

/**
 * The membership part of a heartbeat, as CTEs: upsert this member's own row (only ever its own:
 * the stored `leader_id` must be the caller's) and, on the INSERT path only, NOTIFY `elected`.
 * Like the names, the member row is locked with SKIP LOCKED first: a session holding it locked
 * costs the membership its renewal this time, never the statement (and with it every name
 * renewed beside it) a wait.
 */
function memberUpsert(db: LeaderDatabase, table: LeaderTable) {
  const memberLockable = db
    .$with('member_lockable')
    .as(db.select({ name: table.name }).from(table).where(eq(table.name, b.memberName)).for('no key update', { skipLocked: true }));
  const mine = db.$with('mine').as(
    db
      .insert(insertable(table))
      .select(
        sql`select ${b.memberName}::text, ${b.leaderId}::text, now(), ${leaseEnd()}, null::timestamptz
            where ${b.memberName}::text in (select name from ${memberLockable})
               or not exists (select 1 from ${table} as t where t.name = ${b.memberName}::text)`,
      )
      .onConflictDoUpdate({
        target: table.name,
        set: { expiresAt: sql`excluded.expires_at` },
        setWhere: eq(table.leaderId, b.leaderId),
      })
      .returning(),
  );
  // `elected_at = now()` only on the INSERT path (now() is the statement's transaction start).
  const announced = db.$with('announced').as(
    db
      .select({ notified: sql<string>`${notifyRowSql(b.channel, 'elected', mine)}::text`.as('notified') })
      .from(mine)
      .where(sql`${mine.electedAt} = now()`),
  );
  return { memberLockable, mine, announced };
}

/**
 * Deletes this member's row (term-free: the row is the member's alone) and NOTIFYs `resigned`,
 * so the others rebalance at once; and, in the same statement, resigns `leaderships` like
 * `resignMany`. One commit: by the time any other member hears of a released name, this member
 * is already gone from the membership it reads, so the name's new owner is decided at once.
 */
export async function leaveGroup(
  db: LeaderDatabase,
  table: LeaderTable,
  input: { memberName: string; leaderId: string; channel: string | null; leaderships?: readonly NameTerm[] },
): Promise<{ left: boolean; released: string[]; skipped: string[] }> {
  const leaderships = input.leaderships ?? [];
  const params = { memberName: input.memberName, leaderId: input.leaderId, channel: input.channel };
  if (leaderships.length === 0) {
    const rows = await preparedOnce(db, table, 'leave', leaveQuery).execute(params);
    return { left: (rows[0]?.left ?? 0) > 0, released: [], skipped: [] };
  }
  const rows = await preparedOnce(db, table, 'leave_resign', leaveResignQuery).execute({ ...params, pairs: pairsJson(leaderships) });
  return { left: (rows[0]?.left ?? 0) > 0, ...resignOutcome(leaderships, rows) };
}

function leaveQuery(db: LeaderDatabase, table: LeaderTable) {
  const { goneNotified, ctes } = leaveCtes(db, table);
  return db
    .with(...ctes)
    .select({ left: sql<number>`(select count(*) from ${goneNotified})`.mapWith(Number) })
    .from(sql`(select 1) as one`);
}

function leaveResignQuery(db: LeaderDatabase, table: LeaderTable) {
  const { goneNotified, ctes } = leaveCtes(db, table);
  const resign = resignStatement(db, table);
  return (
    db
      .with(...ctes, resign.lockable, resign.deleted)
      // `left` first: the executor projects columns in order, so the member's NOTIFY is queued
      // (and heard) before any name's, though all arrive with the one commit.
      .select({ left: sql<number>`(select count(*) from ${goneNotified})`.mapWith(Number), ...resign.columns })
      .from(resign.source)
      .leftJoin(resign.deleted, resign.joined)
  );
}

/** Deleting this member's row (only its own: the stored `leader_id` must be the caller's), with its `resigned` NOTIFY. */
function leaveCtes(db: LeaderDatabase, table: LeaderTable) {
  const gone = db.$with('gone').as(
    db
      .delete(table)
      .where(and(eq(table.name, b.memberName), eq(table.leaderId, b.leaderId)))
      .returning(),
  );
  const goneNotified = db
    .$with('gone_notified')
    .as(db.select({ notified: sql<string>`${notifyRowSql(b.channel, 'resigned', gone)}::text`.as('notified') }).from(gone));
  return { goneNotified, ctes: [gone, goneNotified] as const };
}
