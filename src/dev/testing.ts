/**
 * Seams for tests of this library (and of applications that want to inject faults): an
 * elector whose lease store a test can wrap, and the store itself. The library core never
 * imports this file.
 */
import { Elector } from '../elector/elector.js';
import { renewQuery } from '../lease/statements.js';
import { createLeaseStore, type LeaseStore } from '../lease/store.js';
import type { ElectorOptions } from '../options.js';
import { riverLeader } from '../schema.js';
import type { LeaderDatabase } from '../types.js';

export type { ElectResult, TermInput } from '../lease/statements.js';
export type { LeaseStore, RenewDeadline } from '../lease/store.js';

/** An elector whose lease store is `wrap(realStore)`: wrap one method to delay or fail it, like River's partial executor mocks. */
export function createElectorWithStore(db: LeaderDatabase, options: ElectorOptions, wrap: (store: LeaseStore) => LeaseStore): Elector {
  return new Elector(db, options, { wrapStore: wrap });
}

/** The real lease store, its statements straight on `db` (not on an elector's own pool). */
export function leaseStore(db: LeaderDatabase, options: { table?: typeof riverLeader; channel?: string } = {}): LeaseStore {
  return createLeaseStore(db, options.table ?? riverLeader, options.channel ?? 'river_leadership');
}

/** The SQL of the renew UPSERT, for tests that inspect it (the River #197 check). */
export function renewSql(db: LeaderDatabase, table = riverLeader): string {
  return renewQuery(db, table).toSQL().sql;
}

/** A deadline far in the future, for store calls in tests that are not about deadlines. */
export const NO_DEADLINE = Object.freeze({ remainingMs: () => 60_000 });

/** When a failed statement replaces the connections, for its own test. */
export { afterFailure } from '../elector/failures.js';
/** Session bounds from a timing, and the library's own connections with them, for tests of what those connections carry. */
export { sessionBounds } from '../elector/trust.js';
/** The assignment's pair score and quotas, for the tests that hold `assignNames` to its definition. */
export { pairScore, quotas } from '../group/balance.js';
/** The check every lease answer passes before it is believed, for its own test. */
export { believed } from '../lease/answers.js';
export type { BatchElectOutcome, BatchRenewOutcome, NameTerm } from '../lease/batch.js';
/** The group's batched statements, straight on `db`, for tests that drive them by hand (stale terms, locked rows). */
export { electMany, heartbeat, renewMany, renewManyWithHeartbeat, resignMany } from '../lease/batch.js';
export { acquireStatementDatabase } from '../lease/connection.js';
/** The process's shared LISTEN connection, for tests of its LISTEN/UNLISTEN bookkeeping. */
export { subscribeChannel } from '../listen/notifier.js';
/** The next-in-line hint's payload, for tests of the handoff hints. */
export { directChannel, nextInLinePayload, parseElectorHint, parseNotification } from '../listen/payload.js';

/** The client-side bounds, for tests that give them real Drizzle queries. */
export { settledWithin, withDeadline } from '../util/deadline.js';
