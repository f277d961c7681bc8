/**
 * The `LeaseStore`: the small interface the elector campaigns through (elect, renew, resign),
 * like client-go's resource lock or River's executor. Built once per elector from a database
 * object, a table and a channel; a test can wrap one method of the real store to inject a
 * failure or a delay, and run everything else against the real database.
 *
 * Every call is one statement, so a process that stops or is cut off mid-call never holds a
 * transaction (and its row locks) open: the statement commits or not on the server by itself.
 * Server-side bounds come from the connection's session settings (lease/connection.ts).
 */
import { DeadlineExceededError } from '../errors.js';
import type { LeaderTable } from '../schema.js';
import type { LeaderDatabase, LeaderInfo } from '../types.js';
import { notifyingIfPossible } from './notify-fallback.js';
import * as statements from './statements.js';

export type { ElectResult, TermInput } from './statements.js';

/** How long a renewal may take: the time left in the elector's trust window, read when asked. */
export interface RenewDeadline {
  remainingMs(): number;
}

export interface LeaseStore {
  /**
   * One election. `input.channel` overrides the store's channel for the `elected` NOTIFY (null:
   * none). Rejects with `DeadlineExceededError` when no answer came within `deadlineMs`; if a
   * win comes later, `onLate` receives its lease: its holder must release it.
   */
  elect(
    input: { name: string; leaderId: string; ttlMs: number; channel?: string | null },
    deadlineMs?: number,
    onLate?: (lease: LeaderInfo) => void,
  ): Promise<statements.ElectResult>;
  /**
   * The renewed lease, a new term (the row was gone and the INSERT path ran), or null: lost.
   * Rejects with `DeadlineExceededError` when no answer came within the deadline; if one comes
   * later with a lease, `onLate` receives it: its holder must release it.
   */
  renew(
    input: statements.TermInput & { ttlMs: number },
    deadline: RenewDeadline,
    onLate?: (lease: LeaderInfo) => void,
  ): Promise<LeaderInfo | null>;
  /** Deletes exactly this term's row and NOTIFYs `resigned` (on `input.channel` if given); true when the row was there. */
  resign(input: statements.TermInput & { channel?: string }): Promise<boolean>;
}

/** The deadline of a call that names none (tests, tools): generous, but still a bound. */
const UNHURRIED_MS = 60_000;

/**
 * `db` runs every statement, or `{ elect, lead }` splits them: elections on one database
 * object, a leader's renewals and resignations on another (the elector's two own pools).
 */
export function createLeaseStore(
  db: LeaderDatabase | { readonly elect: LeaderDatabase; readonly lead: LeaderDatabase },
  table: LeaderTable,
  channel: string,
  /** The server's NOTIFY queue was full: the statement went again without its notification. */
  notifyDropped: (error: unknown) => void = () => {},
): LeaseStore {
  const { elect, lead } = 'elect' in db && 'lead' in db ? db : { elect: db as LeaderDatabase, lead: db as LeaderDatabase };
  return {
    elect: (input, deadlineMs = UNHURRIED_MS, onLate) =>
      answeredWithin(
        notifyingIfPossible(
          input.channel === undefined ? channel : input.channel,
          (ch) => statements.elect(elect, table, { ...input, channel: ch }),
          notifyDropped,
        ),
        deadlineMs,
        'election',
        (result) => {
          if (result.won) onLate?.(result.lease);
        },
      ),
    renew: (input, deadline, onLate) => {
      const remaining = deadline.remainingMs();
      if (remaining <= 0) return Promise.reject(new DeadlineExceededError('renewal not sent: its deadline had already passed'));
      return answeredWithin(statements.renew(lead, table, input), remaining, 'renewal', (lease) => {
        if (lease) onLate?.(lease);
      });
    },
    resign: (input) =>
      notifyingIfPossible(input.channel ?? channel, (ch) => statements.resign(lead, table, { ...input, channel: ch }), notifyDropped),
  };
}

/**
 * A statement's answer within `ms`, else `DeadlineExceededError`. The statement is not
 * cancelled (the server bounds it with its own timeouts); an answer that still comes is given
 * to `late`, so a lease it carries can be released instead of left to expire.
 */
async function answeredWithin<T>(work: Promise<T>, ms: number, what: string, late: (value: T) => void): Promise<T> {
  let abandoned = false;
  work.then((value) => abandoned && late(value)).catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abandoned = true;
      reject(new DeadlineExceededError(`${what} did not answer within its ${Math.round(ms)} ms deadline`));
    }, ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
