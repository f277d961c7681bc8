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
import * as statements from './statements.js';

export type { ElectResult, TermInput } from './statements.js';

/** How long a renewal may take: the time left in the elector's trust window, read when asked. */
export interface RenewDeadline {
  remainingMs(): number;
}

export interface LeaseStore {
  elect(input: { name: string; leaderId: string; ttlMs: number }): Promise<statements.ElectResult>;
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
  /** Deletes exactly this term's row and NOTIFYs `resigned`; true when the row was there. */
  resign(input: statements.TermInput): Promise<boolean>;
}

export function createLeaseStore(db: LeaderDatabase, table: LeaderTable, channel: string): LeaseStore {
  return {
    elect: (input) => statements.elect(db, table, { ...input, channel }),
    renew: (input, deadline, onLate) => renewWithin(db, table, input, deadline, onLate),
    resign: (input) => statements.resign(db, table, { ...input, channel }),
  };
}

/**
 * The renewal UPSERT with a client-side deadline from the trust window (the server-side bound
 * is the session's statement and lock timeouts). An answer after the deadline is not believed;
 * a lease it carries goes to `onLate`, so followers need not wait it out.
 */
async function renewWithin(
  db: LeaderDatabase,
  table: LeaderTable,
  input: statements.TermInput & { ttlMs: number },
  deadline: RenewDeadline,
  onLate?: (lease: LeaderInfo) => void,
): Promise<LeaderInfo | null> {
  const remaining = deadline.remainingMs();
  if (remaining <= 0) throw new DeadlineExceededError('renewal not sent: its deadline had already passed');
  let abandoned = false;
  const work = statements.renew(db, table, input);
  work.then((lease) => abandoned && lease && onLate?.(lease)).catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abandoned = true;
      reject(new DeadlineExceededError(`renewal did not answer within its ${Math.round(remaining)} ms deadline`));
    }, remaining);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
