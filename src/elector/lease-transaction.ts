/**
 * `elector.transaction(fn)`: the caller's work in a Drizzle transaction that commits only while
 * this elector's exact term holds the lease, and that no successor can overtake (the lock and
 * why it is the right one: lease/transaction.ts).
 *
 * How long it can hold a successor back is bounded, so that a process frozen, partitioned or
 * just slow inside the transaction delays failover by a known amount:
 *
 * - by this process, at `timeout` after the lock was taken: the transaction is marked timed
 *   out, so it can no longer commit (the work's return is turned into a rollback), and it is
 *   ended from the elector's own connection, only if that same transaction is still open. With
 *   node-postgres its session is terminated; with postgres.js its running statement is
 *   cancelled, and so is every statement it sends next, because postgres.js 3.4 can crash the
 *   process when the server ends a session under a transaction (porsager/postgres#1208); when
 *   the server did end it (idle timeout), the work's failure is not handed back to postgres.js,
 *   whose answer would be a ROLLBACK written to the closed connection.
 * - by the server, without this process: `statement_timeout` = `timeout` (a statement is
 *   cancelled); `idle_in_transaction_session_timeout` = `timeout` (postgres.js: 2 × `timeout`,
 *   so that a live process always acts first); on PostgreSQL 17+ also `transaction_timeout`,
 *   the same as the idle bound (the only one that ends a backend left between the halves of a
 *   statement: lease/transaction.ts).
 *
 * So after the lock was taken, a successor is held back at most `timeout` (a live process, or
 * PostgreSQL 17+ with node-postgres), 2 × `timeout` (node-postgres, frozen, before 17;
 * postgres.js, frozen, 17+) or 3 × `timeout` (postgres.js, frozen mid-statement, before 17).
 * Before 17, a postgres.js process frozen or cut off between a statement's Describe and its
 * Bind holds it back until its connection closes. A transaction ended that way rolls back:
 * nothing it wrote survives.
 */
import type { PgTransactionConfig } from 'drizzle-orm/pg-core';
import type { CheckedOut, DriverCapabilities, TransactionGuard } from '../driver/types.js';
import { CommitOutcomeUnknownError, DeadlineExceededError, LeadershipLostError, TransactionAbortedError } from '../errors.js';
import { lockLease, type OpenTransaction } from '../lease/transaction.js';
import type { LeaderTable } from '../schema.js';
import type { LeaderDatabase, Lease } from '../types.js';
import { errorCode, findCause } from '../util/cause.js';
import { withDeadline } from '../util/deadline.js';
import type { LeaderWork, WorkItem } from './work.js';

/** Drizzle's transaction config (isolation level, access mode, deferrable), plus the bound. */
export interface LeaseTransactionConfig extends PgTransactionConfig {
  /**
   * The longest the transaction may hold the lease (ms, from the moment it took its lock).
   * Past it the transaction is ended and rolls back. Default: the trust window
   * (`ttl - safetyMargin`). A longer one lets longer work commit, and lets a frozen leader
   * hold back failover that much longer.
   */
  timeout?: number;
}

/** The `tx` a Drizzle database object hands to its `transaction()` callback. */
export type TransactionOf<TDb extends LeaderDatabase> = Parameters<Parameters<TDb['transaction']>[0]>[0];

export type LeaseTransactionFn<TDb extends LeaderDatabase, T> = (tx: TransactionOf<TDb>, lease: Lease, signal: AbortSignal) => Promise<T>;

const NOTHING_THROWN = Symbol('nothing thrown');

/** After its timeout, how long a transaction on a connection of its own may take to end before that connection is discarded (ms). */
const STOP_GRACE_MS = 1_000;

/** SQLSTATEs of the server ending a transaction for its own timeouts. */
const SERVER_TIMEOUTS = new Set(['25P03', '25P04']);

/** Serialization failures while taking the lock (REPEATABLE READ, SERIALIZABLE) are retried this often: the work has not run yet. */
const LOCK_ATTEMPTS = 3;

export interface LeaseTransactionRun<TDb extends LeaderDatabase, T> {
  readonly db: TDb;
  readonly table: LeaderTable;
  readonly lease: Lease;
  readonly leaderId: string;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** Client-side bound of the lock statement. */
  readonly lockDeadlineMs: number;
  readonly guard: (() => TransactionGuard) | null;
  /** The driver's own checkout of the transaction's connection (DriverCapabilities.checkOut), or null: Drizzle's. */
  readonly checkOut: DriverCapabilities['checkOut'];
  /** DriverCapabilities.exclusiveTransactions: whether the caller may be answered before the transaction has ended. */
  readonly exclusive: boolean;
  readonly work: LeaderWork;
  /** Ends an open transaction (`item.open`) from the elector's own connection. */
  readonly end: (item: WorkItem) => Promise<void>;
  /** Whether the server may end the whole session (`transaction_timeout`): see DriverCapabilities.sessionEndSafe. */
  readonly sessionEndSafe: boolean;
  /** The driver's test for a failure that means the transaction's connection is gone (DriverCapabilities.connectionGone). */
  readonly connectionGone: ((error: unknown) => boolean) | null;
  readonly config: PgTransactionConfig | undefined;
  readonly fn: LeaseTransactionFn<TDb, T>;
}

export function runLeaseTransaction<TDb extends LeaderDatabase, T>(run: LeaseTransactionRun<TDb, T>): Promise<T> {
  const item: WorkItem = { term: run.lease.term, label: 'a lease-checked transaction', open: null, timeoutMs: run.timeoutMs };
  const done = attempt(run, item);
  run.work.track(item, done);
  return done;
}

async function attempt<TDb extends LeaderDatabase, T>(run: LeaseTransactionRun<TDb, T>, item: WorkItem): Promise<T> {
  const { lease, table, timeoutMs } = run;
  const term = { name: lease.name, leaderId: run.leaderId, term: lease.term };
  for (let attempt = 1; ; attempt++) {
    const guard = run.guard?.() ?? null;
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    let lockedAt = Number.POSITIVE_INFINITY;
    // Before the work runs, the caller is never kept waiting on a connection that stopped
    // answering: the rollback is left to finish (or fail) on its own. Only where the transaction
    // has a connection to itself: on one the application shares (a bare node-postgres Client),
    // the application's next query would run inside the abandoned transaction, so it waits.
    const beginBy = performance.now() + run.lockDeadlineMs;
    let checkedOut: CheckedOut | null = null;
    let rejectLock: (error: unknown) => void = () => {};
    const lockRejected = new Promise<never>((_, reject) => {
      rejectLock = (error) => {
        if (!run.exclusive) return;
        // A connection checked out here that stopped answering goes at once (its pending
        // statement fails), not when TCP gives up: the pool must not run dry behind it.
        if (error instanceof DeadlineExceededError) checkedOut?.release(true);
        reject(error);
      };
    });
    lockRejected.catch(() => {});
    try {
      checkedOut = (await run.checkOut?.(run.db, run.lockDeadlineMs)) ?? null;
    } catch (error) {
      guard?.end();
      throw error;
    }
    // BEGIN too has a bound, counted from the start (the wait for a connection included): past
    // it the caller is answered, and a BEGIN that still completes runs nothing (rolled back at once).
    let entered = false;
    let abandoned: Error | null = null;
    const beginTimer = run.exclusive
      ? setTimeout(
          () => {
            abandoned = new DeadlineExceededError(`the transaction did not begin within ${run.lockDeadlineMs} ms`);
            rejectLock(abandoned);
          },
          Math.max(0, beginBy - performance.now()),
        )
      : undefined;
    /** What the callback threw: the transaction rejecting with exactly that means its ROLLBACK went through. */
    let thrown: unknown = NOTHING_THROWN;
    /** The callback returned: Drizzle sends COMMIT, and a failure from here on may come after the commit. */
    let committing = false;
    /** The connection was already gone when the callback returned: the COMMIT never reached the server. */
    let lostBeforeCommit = false;
    /** The COMMIT's own failure: Drizzle answers it with a ROLLBACK, whose failure is what reaches us. */
    const commit: { error?: unknown; aborted?: boolean } = {};
    try {
      const work = async (tx: object): Promise<T> => {
        guard?.identified(tx);
        let open: OpenTransaction | null;
        try {
          open = await withDeadline(
            lockLease(tx as unknown as LeaderDatabase, table, term, {
              timeoutMs,
              // The server's own bounds: longer where the driver does not survive them, so a live process acts first.
              serverBoundMs: run.sessionEndSafe ? timeoutMs : 2 * timeoutMs,
            }),
            // What is left of the one bound before the work runs (connection, BEGIN and this lock);
            // on a shared session the caller waits for the session anyway, so the lock gets its own.
            run.exclusive ? Math.max(1, beginBy - performance.now()) : run.lockDeadlineMs,
            () => `the lease check did not answer within ${run.lockDeadlineMs} ms of the call`,
          );
        } catch (error) {
          rejectLock(error);
          throw error;
        }
        if (!open) throw new LeadershipLostError(lease.name, lease.term, 'lease-not-held');
        item.open = open;
        lockedAt = performance.now();
        gateStatements(
          tx,
          run.db,
          () => timedOut,
          () => new LeadershipLostError(lease.name, lease.term, 'timed-out'),
          commit,
          () => new TransactionAbortedError(lease.name, lease.term),
        );
        item.stop = () => {
          if (timedOut) return;
          timedOut = true;
          clearTimeout(timer);
          void run.end(item).catch(() => {});
          // A connection checked out here goes too if the transaction has not ended shortly
          // after (the server's answer to the ending usually comes first and says how it
          // ended): a statement that gets no answer (a partition) then fails now, not when TCP
          // gives up, and the pool gets its place back.
          if (checkedOut) setTimeout(() => checkedOut?.release(true), Math.min(STOP_GRACE_MS, timeoutMs)).unref?.();
        };
        timer = setTimeout(() => item.stop?.(), timeoutMs);
        let result: T;
        try {
          result = await run.fn(tx as TransactionOf<TDb>, lease, run.signal);
        } catch (error) {
          // postgres.js answers a failed transaction function with a ROLLBACK on the same
          // connection; written to one the server has closed, it crashes the process from a
          // timer (porsager/postgres#1208). The transaction already rejected with the close
          // (postgres.js races it against the function), so nothing waits for this one:
          // leave it unsettled rather than send anything more on a dead connection.
          if (run.connectionGone?.(error)) return new Promise<T>(() => {});
          throw error;
        }
        // Past its timeout the transaction may not commit, even if the work finished meanwhile.
        if (timedOut) throw new LeadershipLostError(lease.name, lease.term, 'timed-out');
        return result;
      };
      const body = async (tx: object): Promise<T> => {
        entered = true;
        clearTimeout(beginTimer);
        try {
          if (abandoned) throw abandoned;
          const result = await work(tx);
          committing = true;
          lostBeforeCommit = checkedOut?.lost ?? false;
          return result;
        } catch (error) {
          thrown = error;
          throw error;
        }
      };
      const transaction = (
        checkedOut ? checkedOut.transaction(body as (tx: unknown) => Promise<unknown>, run.config) : run.db.transaction(body, run.config)
      ) as Promise<T>;
      // The guard stays until the transaction has settled and its client is back in the pool,
      // even when the caller was answered early (a lock statement that never answered): a
      // connection that dies meanwhile must not become an unheard 'error' event. A connection
      // checked out here goes back whatever happened; discarded unless the transaction ended
      // with its COMMIT or with a ROLLBACK that went through.
      void transaction.then(
        () => {
          guard?.end();
          checkedOut?.release(false);
        },
        (error: unknown) => {
          guard?.end();
          checkedOut?.release(!entered || (error !== thrown && !commit.aborted));
        },
      );
      return (await Promise.race([transaction, lockRejected])) as T;
    } catch (error) {
      if (item.open === null && errorCode(error) === '40001' && attempt < LOCK_ATTEMPTS) continue;
      if (error instanceof LeadershipLostError) throw error;
      // The COMMIT was answered with ROLLBACK: known, nothing written.
      if (commit.aborted) throw new TransactionAbortedError(lease.name, lease.term);
      // The COMMIT was sent and no answer of the server's says how it ended: it may have committed.
      const cause = commit.error ?? error;
      if (committing && !lostBeforeCommit && error !== thrown && !answeredByServer(cause)) {
        throw new CommitOutcomeUnknownError(lease.name, lease.term, cause);
      }
      // The server's own timeouts can fire a moment before this process's timer, and Drizzle's
      // failed ROLLBACK then hides their code: past the timeout, any failure is the timeout.
      const overran = performance.now() - lockedAt >= timeoutMs - 5;
      if (item.open !== null && (timedOut || overran || SERVER_TIMEOUTS.has(errorCode(cause) ?? ''))) {
        throw new LeadershipLostError(lease.name, lease.term, 'timed-out', error);
      }
      throw error;
    } finally {
      clearTimeout(timer);
      clearTimeout(beginTimer);
    }
  }
}

/**
 * Whether a failure is the server's answer to the statement (a COMMIT refused: serialization
 * failure, deferred constraint, ...: rolled back), not the connection failing under it
 * (connection exceptions 08xxx, the backend terminated 57P0x, or no SQLSTATE at all).
 */
function answeredByServer(error: unknown): boolean {
  // The server's own error carries a severity (node-postgres and postgres.js alike); a driver's
  // connection errors carry codes of their own (ECONNRESET, CONNECTION_CLOSED) and none.
  const found = findCause<{ code?: unknown; severity?: unknown }>(
    error,
    (e) => typeof e.code === 'string' && typeof e.severity === 'string',
  );
  const code = found?.code as string | undefined;
  return code !== undefined && !code.startsWith('08') && !code.startsWith('57P0');
}

/**
 * Once the transaction has timed out, every statement `fn` still sends through `tx` fails before
 * it reaches the connection, so a live process that keeps working past its timeout (short
 * statements that a cancel from outside rarely catches in flight) rolls back at its next
 * statement instead of holding the lease row until `fn` returns. Drizzle prepares each query
 * through the transaction's session, so that is where the gate goes; only a session of the
 * transaction's own (a connection checked out for it), never one shared with `db`.
 */
function gateStatements(
  tx: object,
  db: object,
  closed: () => boolean,
  refusal: () => Error,
  commit: { error?: unknown; aborted?: boolean },
  aborted: () => Error,
): void {
  type Prepared = Record<string, unknown>;
  const session = (tx as { session?: { prepareQuery?: (...args: unknown[]) => Prepared } }).session;
  if (!session || session === (db as { session?: unknown }).session || typeof session.prepareQuery !== 'function') return;
  const prepare = session.prepareQuery.bind(session);
  session.prepareQuery = (...args: unknown[]) => {
    const prepared = prepare(...args);
    // Drizzle's own ROLLBACK (and ROLLBACK TO SAVEPOINT) must go through: the transaction ends with it.
    const text = (args[0] as { sql?: unknown } | undefined)?.sql;
    if (typeof text === 'string' && /^\s*rollback\b/i.test(text)) return prepared;
    const isCommit = typeof text === 'string' && /^\s*commit\b/i.test(text);
    for (const method of ['execute', 'all', 'values']) {
      const original = prepared[method];
      if (typeof original !== 'function') continue;
      prepared[method] = (...params: unknown[]) => {
        if (closed()) return Promise.reject(refusal());
        const result = original.apply(prepared, params) as Promise<unknown>;
        // How the COMMIT itself ended decides whether the outcome is known (see the caller).
        return isCommit
          ? result.then(
              (answer) => {
                // An aborted transaction's COMMIT is answered with ROLLBACK, not an error.
                if ((answer as { command?: unknown } | null)?.command === 'ROLLBACK') {
                  commit.aborted = true;
                  throw aborted();
                }
                return answer;
              },
              (error: unknown) => {
                commit.error = error;
                throw error;
              },
            )
          : result;
      };
    }
    return prepared;
  };
}
