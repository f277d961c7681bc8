/**
 * The `LeaseStore`: the small interface the elector campaigns through (elect, renew, resign),
 * like client-go's resource lock or River's executor. Built once per elector from a database
 * object, a table and a channel; a test can wrap one method of the real store to inject a
 * failure or a delay, and run everything else against the real database.
 */

import { sql } from 'drizzle-orm';
import type { DriverCapabilities } from '../driver/types.js';
import { DeadlineExceededError } from '../errors.js';
import type { LeaderTable } from '../schema.js';
import type { LeaderDatabase, LeaderInfo } from '../types.js';
import * as statements from './statements.js';

export type { ElectResult, TermInput } from './statements.js';

/**
 * How long a renewal may take, from the elector's trust window: `remainingMs()` is the client
 * bound, `serverBudgetMs()` the server-side `statement_timeout`/`lock_timeout`, a little
 * shorter so a timeout arrives as the server's own error rather than as an abandoned call.
 */
export interface RenewDeadline {
  remainingMs(): number;
  serverBudgetMs(): number;
}

export interface RenewResult {
  /** The renewed lease, a new term (the row was gone and the INSERT path ran), or null: lost. */
  readonly lease: LeaderInfo | null;
  /** How long the renewal waited for a pool connection. */
  readonly waitedMs: number;
}

export interface LeaseStore {
  /** Whether renewals carry server-side deadlines (the driver offers interactive transactions). */
  readonly deadlines: boolean;
  elect(input: { name: string; leaderId: string; ttlMs: number }): Promise<statements.ElectResult>;
  renew(input: statements.TermInput & { ttlMs: number }, deadline: RenewDeadline): Promise<RenewResult>;
  /** Deletes exactly this term's row and NOTIFYs `resigned`; true when the row was there. */
  resign(input: statements.TermInput): Promise<boolean>;
}

export function createLeaseStore(
  db: LeaderDatabase,
  table: LeaderTable,
  channel: string,
  capabilities: Pick<DriverCapabilities, 'transactions'>,
): LeaseStore {
  return {
    deadlines: capabilities.transactions,
    elect: (input) => statements.elect(db, table, { ...input, channel }),
    renew: (input, deadline) =>
      capabilities.transactions
        ? renewWithin(db, table, input, deadline)
        : statements.renew(db, table, input).then((lease) => ({ lease, waitedMs: 0 })),
    resign: (input) => statements.resign(db, table, { ...input, channel }),
  };
}

/**
 * Renew with deadlines from the trust window: a bounded wait for a connection (a saturated
 * shared pool must not queue the renewal until trust runs out), and a server-side
 * `statement_timeout` and `lock_timeout` for the statement (an operator's open transaction
 * holding the row must not make a renewal return after the deadline). Costs a transaction
 * (BEGIN, set_config, the UPSERT, COMMIT): renewals are not on the handoff path.
 */
async function renewWithin(
  db: LeaderDatabase,
  table: LeaderTable,
  input: statements.TermInput & { ttlMs: number },
  deadline: RenewDeadline,
): Promise<RenewResult> {
  const startedAt = performance.now();
  let abandoned = false;
  let waitedMs = 0;
  let connected = false;
  const work = db.transaction(async (tx) => {
    connected = true;
    waitedMs = performance.now() - startedAt;
    const budget = deadline.serverBudgetMs();
    if (abandoned || budget < 1) {
      throw new DeadlineExceededError(`renewal got a connection after ${Math.round(waitedMs)} ms, past its deadline`);
    }
    await tx.execute(
      sql`select set_config('statement_timeout', ${String(budget)}, true), set_config('lock_timeout', ${String(budget)}, true)`,
    );
    return statements.renew(db, table, input, tx as unknown as LeaderDatabase);
  });
  work.catch(() => {}); // settled later if abandoned; its result is no longer wanted
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        abandoned = true;
        const waited = performance.now() - startedAt;
        reject(
          connected
            ? new DeadlineExceededError(`renewal did not finish within its ${Math.round(waited)} ms deadline`)
            : new DeadlineExceededError(`renewal waited ${Math.round(waited)} ms for a connection and never got one`, waited),
        );
      },
      Math.max(0, deadline.remainingMs()),
    );
  });
  try {
    const lease = await Promise.race([work, expired]);
    return { lease, waitedMs };
  } finally {
    clearTimeout(timer);
  }
}
