/**
 * The NOTIFY payload, in one place: the SQL that builds it inside the lease statements, the
 * JS that builds a `request_resign`, and the parser. Notifications are hints: anyone with
 * access to the database can send one, they can be lost while a LISTEN connection
 * reconnects, and they can arrive twice. So a payload can only ever *wake* an elector or a
 * watcher, which then asks the database; nothing here decides who leads.
 */
import { createHash } from 'node:crypto';
import { type Placeholder, type SQL, sql } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';

export const NOTIFICATION_VERSION = 1;

/** Postgres refuses NOTIFY payloads of 8000 bytes or more; anything longer is not ours. */
const MAX_PAYLOAD_LENGTH = 8000;

export type LeadershipAction = 'elected' | 'resigned' | 'request_resign';

export interface LeadershipNotification {
  v: typeof NOTIFICATION_VERSION;
  action: LeadershipAction;
  name: string;
  /** Set on `elected` and `resigned`. */
  leaderId?: string;
  /** Set on `elected` and `resigned`; optional on `request_resign` to target one term. */
  term?: number;
}

const ACTIONS: ReadonlySet<string> = new Set<LeadershipAction>(['elected', 'resigned', 'request_resign']);

/**
 * `pg_notify(channel, payload)` for a lease row inside a statement, so the notification is
 * sent by the same statement (and commits with it) that elected, deleted or flagged the row.
 * A null channel sends nothing: the statement's retry when the server's NOTIFY queue is full
 * (lease/notify-fallback.ts).
 */
export function notifyRowSql(
  channel: Placeholder,
  action: LeadershipAction,
  row: { name: AnyPgColumn | SQL; leaderId: AnyPgColumn | SQL; term: AnyPgColumn | SQL },
): SQL {
  return sql`(case when ${channel}::text is null then null else pg_notify(${channel}, json_build_object('v', ${sql.raw(String(NOTIFICATION_VERSION))}, 'action', ${sql.raw(`'${action}'`)}, 'name', ${row.name}, 'leaderId', ${row.leaderId}, 'term', ${row.term})::text)::text end)`;
}

/**
 * A follower volunteering to go first when `term` of `name` resigns: the others then wait a
 * moment for its `elected` instead of all electing at once (the herd). Every listener hears
 * notifications in commit order, so the latest volunteer heard is the same one everywhere.
 * `parseNotification` returns null for it (an action it does not know), so watchers, the CLI
 * and older electors ignore it; only `parseElectorHint` reads it.
 */
export interface NextInLineNotification {
  v: typeof NOTIFICATION_VERSION;
  action: 'next_in_line';
  name: string;
  /** The volunteer's elector id. */
  id: string;
  /** The term the volunteer follows: the claim means nothing for any other. */
  term: number;
  /**
   * The volunteer listens on its `directChannel`, so the leader may tell it alone. Absent from
   * older electors' claims: their leader then tells everyone, as they expect.
   */
  direct?: true;
}

/** The payload of an `elected` or `resigned` notification sent from JS (the lease statements build theirs in SQL, same fields). */
export function leadershipPayload(action: 'elected' | 'resigned', name: string, leaderId: string, term: number): string {
  return JSON.stringify({ v: NOTIFICATION_VERSION, action, name, leaderId, term });
}

/**
 * The channel only one candidate listens on besides the shared one: a resigning leader that
 * knows its next in line tells it alone, so the other followers' processes are not all woken
 * while it elects. Derived from the shared channel and the candidate's id, so the leader needs
 * nothing but the volunteer's `next_in_line` to address it; hashed to stay a short identifier
 * (channel names are at most 63 bytes) whatever the id.
 */
export function directChannel(channel: string, id: string): string {
  return `drizzle_leader_direct_${createHash('sha256').update(`${channel}\n${id}`).digest('hex').slice(0, 32)}`;
}

/** The payload of a `next_in_line` notification. */
export function nextInLinePayload(name: string, id: string, term: number): string {
  return JSON.stringify({ v: NOTIFICATION_VERSION, action: 'next_in_line', name, id, term, direct: true });
}

/** Parses a payload; returns null for anything malformed, oversized, of another version or unknown. Never throws. */
export function parseNotification(payload: unknown): LeadershipNotification | null {
  const hint = parseElectorHint(payload);
  return hint && hint.action !== 'next_in_line' ? hint : null;
}

/** `parseNotification`, plus the `next_in_line` volunteering only electors act on. Never throws. */
export function parseElectorHint(payload: unknown): LeadershipNotification | NextInLineNotification | null {
  if (typeof payload !== 'string' || payload.length === 0 || payload.length >= MAX_PAYLOAD_LENGTH) return null;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  // Unknown fields are ignored, so a later version can add some without breaking this reader.
  const { v, action, name, leaderId, term, id, direct } = value as Record<string, unknown>;
  if (v !== NOTIFICATION_VERSION) return null;
  if (typeof name !== 'string' || name.length === 0) return null;
  if (action === 'next_in_line') {
    if (typeof id !== 'string' || id.length === 0 || !isTerm(term)) return null;
    return direct === true
      ? { v: NOTIFICATION_VERSION, action, name, id, term, direct }
      : { v: NOTIFICATION_VERSION, action, name, id, term };
  }
  if (typeof action !== 'string' || !ACTIONS.has(action)) return null;
  if (leaderId !== undefined && leaderId !== null && typeof leaderId !== 'string') return null;
  if (term !== undefined && term !== null && !isTerm(term)) return null;
  const notification: LeadershipNotification = { v: NOTIFICATION_VERSION, action: action as LeadershipAction, name };
  if (typeof leaderId === 'string') notification.leaderId = leaderId;
  if (typeof term === 'number') notification.term = term;
  return notification;
}

function isTerm(term: unknown): term is number {
  return typeof term === 'number' && Number.isSafeInteger(term) && term > 0;
}
