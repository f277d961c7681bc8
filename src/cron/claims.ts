/**
 * The per-fire claim rows of the run coordinator, in the lease table: how a node-cron key
 * becomes a row name, the statement that claims a fire and the one that removes expired
 * claims. Times are the database's (`now()`), so no instance's clock decides how long a claim
 * lives. See run-coordinator.ts for why this is safe under clock skew.
 */
import { createHash } from 'node:crypto';
import { and, inArray, lt, sql } from 'drizzle-orm';
import { RESERVED_PREFIX } from '../lease/reserved.js';
import type { LeaderTable } from '../schema.js';
import type { LeaderDatabase } from '../types.js';

/** Every claim row's name starts with this (in the reserved namespace); cleanup deletes nothing else. */
export const CLAIM_PREFIX = `${RESERVED_PREFIX}cron:`;

/** Rows deleted by one cleanup statement at most, so a backlog costs several short statements, never one long one. */
export const CLEANUP_BATCH = 1_000;

const MAX_NAME_CHARS = 127;
/** Code points of the key kept readable in a hashed name: 20 + 40 + 1 + 64 hex = 125, under the 127 the column allows. */
const READABLE_CHARS = 40;

/**
 * The row name for a node-cron key: `drizzle-leader:cron:<key>` when the name column can store it as given,
 * else a readable head of the key and its SHA-256. Every instance derives the same name from
 * the same key, which is all that exactly-once needs. The digest is over UTF-16 code units so
 * keys that differ only in lone surrogates (which Postgres would store as the same U+FFFD)
 * still get different names.
 */
export function claimName(key: string): string {
  const plain = CLAIM_PREFIX + key;
  if (storable(plain)) return plain;
  const digest = createHash('sha256').update(Buffer.from(key, 'utf16le')).digest('hex');
  const head = [...key]
    .slice(0, READABLE_CHARS)
    .join('')
    .replace(/[\0\p{Cs}]/gu, '?');
  return `${CLAIM_PREFIX}${head}~${digest}`;
}

function storable(name: string): boolean {
  return [...name].length <= MAX_NAME_CHARS && !name.includes('\0') && !/\p{Cs}/u.test(name);
}

/**
 * Claims a fire: inserts the row or does nothing if any row of that name exists, expired or
 * not. Only the inserting session gets a row back, with the term the identity column drew (the
 * fire's fencing token). An expired claim still refuses: only cleanup makes a name claimable
 * again, so a claim refuses for at least `holdMs` and until the next cleanup after that.
 */
export async function claim(
  db: LeaderDatabase,
  table: LeaderTable,
  input: { readonly name: string; readonly holderId: string; readonly holdMs: number },
): Promise<number | null> {
  const rows = await db
    .insert(table)
    .values({
      name: input.name,
      leaderId: input.holderId,
      electedAt: sql`now()`,
      expiresAt: sql`now() + ${input.holdMs} * interval '1 millisecond'`,
    })
    .onConflictDoNothing({ target: table.name })
    .returning({ term: table.term });
  return rows[0] ? Number(rows[0].term) : null;
}

/**
 * Deletes up to CLEANUP_BATCH expired claim rows, and only claim rows: `starts_with` compares
 * the literal prefix (no LIKE wildcards to escape), so leases of electors and group members
 * are never touched. Returns how many were deleted.
 */
export async function deleteExpiredClaims(db: LeaderDatabase, table: LeaderTable): Promise<number> {
  const expired = db
    .select({ name: table.name })
    .from(table)
    .where(and(sql`starts_with(${table.name}, ${CLAIM_PREFIX})`, lt(table.expiresAt, sql`now()`)))
    .limit(CLEANUP_BATCH);
  // The conditions again on the DELETE: it re-reads a row changed since the subquery's snapshot
  // and must leave it alone if it is no longer an expired claim.
  const deleted = await db
    .delete(table)
    .where(and(inArray(table.name, expired), sql`starts_with(${table.name}, ${CLAIM_PREFIX})`, lt(table.expiresAt, sql`now()`)))
    .returning({ name: table.name });
  return deleted.length;
}
