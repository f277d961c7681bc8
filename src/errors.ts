/** Base class of every error this library throws, so callers can catch them as one family. */
export class DrizzleLeaderError extends Error {
  override name = 'DrizzleLeaderError';
}

/** An option failed validation; nothing was started. */
export class InvalidOptionError extends DrizzleLeaderError {
  override name = 'InvalidOptionError';
  constructor(
    readonly option: string,
    readonly value: unknown,
    readonly allowed: string,
  ) {
    super(`Invalid option "${option}": got ${describe(value)}; allowed: ${allowed}`);
  }
}

/** An election name in the library's own namespace (group member rows, cron claims): it would be mistaken for one of them. */
export class ReservedNameError extends InvalidOptionError {
  override name = 'ReservedNameError';
  constructor(
    option: string,
    readonly electionName: string,
    readonly prefix: string,
  ) {
    super(
      option,
      electionName,
      `a name that does not start with "${prefix}" (reserved for the library's own rows: group members, cron claims)`,
    );
  }
}

/** `start()` was called on an elector that has been stopped: electors are single-use. */
export class ElectorStoppedError extends DrizzleLeaderError {
  override name = 'ElectorStoppedError';
  constructor() {
    super('This elector has been stopped; create a new one with createElector()');
  }
}

/** The lease table does not exist: the migrations have not been applied. */
export class LeaseTableMissingError extends DrizzleLeaderError {
  override name = 'LeaseTableMissingError';
  constructor(table: string, cause: unknown) {
    super(
      `The lease table ${table} does not exist; apply the migrations with migrate(db), ` +
        '`npx drizzle-leader migrate`, or your own drizzle-kit flow',
      { cause },
    );
  }
}

/** What the elector was doing when it met an error it handled. */
export type ElectorOperation = 'election' | 'renewal' | 'resignation' | 'listen';

/**
 * The lease table exists but lacks a column this version needs: it was created by an older
 * version's migrations (or by hand). Nothing was changed.
 */
export class LeaseTableOutdatedError extends DrizzleLeaderError {
  override name = 'LeaseTableOutdatedError';
  constructor(table: string, cause: unknown) {
    super(
      `The lease table ${table} lacks a column this version of drizzle-leader needs ` +
        `(${cause instanceof Error ? cause.message : String(cause)}); apply the new migration with migrate(db), ` +
        '`npx drizzle-leader migrate`, or drizzle-kit generate + migrate for a table of your own',
      { cause },
    );
  }
}

/**
 * `migrate()` found a lease table it did not make and cannot use: River's own `river_leader`
 * (a likely neighbour), an older or edited table. Nothing was changed.
 */
export class LeaseTableMismatchError extends DrizzleLeaderError {
  override name = 'LeaseTableMismatchError';
  constructor(table: string, difference: string) {
    super(
      `The table ${table} exists but drizzle-leader cannot use it: ${difference}. Nothing was changed. ` +
        "Keep drizzle-leader's leases in a table of their own: createLeaderTable({ table: 'drizzle_leader' }) " +
        '(or { schema }) applied with your drizzle-kit flow, and pass that table to createElector',
    );
  }
}

/**
 * `start()` met an error that retrying cannot heal: a wrong password or user, a database or host
 * that does not exist, a server that is not PostgreSQL, no privilege on the lease table. The
 * message says what to fix; `kind` says which; the driver's error is the `cause`.
 */
export class DatabaseUnusableError extends DrizzleLeaderError {
  override name = 'DatabaseUnusableError';
  constructor(
    readonly kind: string,
    message: string,
    cause: unknown,
  ) {
    super(message, { cause });
  }
}

/**
 * A failure the elector handled and will retry (it never throws these into the void): given to
 * the logger and to the `error` hook, with the driver's error as `cause`.
 */
export class ElectorError extends DrizzleLeaderError {
  override name = 'ElectorError';
  constructor(
    readonly operation: ElectorOperation,
    cause: unknown,
  ) {
    super(`${operation} failed: ${rootMessage(cause)}`, { cause });
  }
}

/**
 * The COMMIT of a lease-checked transaction was sent and its answer never came (the connection
 * was lost, or ended at the transaction's timeout while the COMMIT was on its way): the work may
 * have committed, or not. If it did, it committed while this term held the lease (the lock
 * still held back every other term). Make the work idempotent, or look before retrying.
 */
export class CommitOutcomeUnknownError extends DrizzleLeaderError {
  override name = 'CommitOutcomeUnknownError';
  constructor(
    readonly election: string,
    readonly term: number,
    cause: unknown,
  ) {
    super(
      `The COMMIT of the lease-checked transaction of "${election}" (term ${term}) got no answer: it may or may not have committed (look before retrying, or make the work idempotent)`,
      { cause },
    );
  }
}

/**
 * `fn` returned normally, but a statement inside it had failed (its error caught in `fn`), which
 * aborted the transaction: the server answered its COMMIT with ROLLBACK. Nothing was written.
 * Seen where the library sends the COMMIT itself (node-postgres).
 */
export class TransactionAbortedError extends DrizzleLeaderError {
  override name = 'TransactionAbortedError';
  constructor(
    readonly election: string,
    readonly term: number,
  ) {
    super(
      `The lease-checked transaction of "${election}" (term ${term}) was aborted by a statement that failed inside it (its error was caught there), so its COMMIT rolled back: nothing was written. Let the error propagate, or use a savepoint (tx.transaction) around the statement that may fail`,
    );
  }
}

/**
 * An answer that cannot be the answer to the statement the library sent (another name or
 * leader, a term that is no identity value): the connection is out of step with the server.
 * Seen with postgres.js `prepare: true` behind a transaction-mode pooler, which hands one
 * client's pipelined statements to different server connections. The answer is not believed:
 * the statement counts as failed and is retried. Through such a pooler use `prepare: false`.
 */
export class UnexpectedAnswerError extends DrizzleLeaderError {
  override name = 'UnexpectedAnswerError';
  constructor(
    readonly statement: string,
    readonly detail: string,
  ) {
    super(
      `The answer to the ${statement} does not match it (${detail}): the connection is out of step with the server. Behind a transaction-mode pooler, give postgres.js prepare: false`,
    );
  }
}

/** A statement or wait did not finish within its bound (safety rule 6). */
export class DeadlineExceededError extends DrizzleLeaderError {
  override name = 'DeadlineExceededError';
}

/** The database object is not one this library knows how to LISTEN through. */
export class UnsupportedDriverError extends DrizzleLeaderError {
  override name = 'UnsupportedDriverError';
}

/** The driver's or server's own words, from the bottom of a cause chain (Drizzle's "Failed query: ..." wraps them), on one line. */
function rootMessage(error: unknown): string {
  let message = error instanceof Error ? error.message : String(error);
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) message = e.message;
  return message.replace(/\s+/g, ' ').trim();
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** Why a lease-checked write was refused. */
export type LeadershipLostReason =
  /** This elector did not lead (or no longer trusted its lease) when the write was asked for. */
  | 'not-leader'
  /** The database no longer held this exact term unexpired when the write took its lock. */
  | 'lease-not-held'
  /** The transaction ran past its `timeout` and was ended; nothing it wrote was committed. */
  | 'timed-out';

/**
 * A lease-checked transaction (or write) did not run, or was rolled back, because this elector's
 * exact term did not hold the lease. Nothing it wrote was committed. Retrying makes sense only
 * after this elector leads again (`waitForLeadership()`).
 */
export class LeadershipLostError extends DrizzleLeaderError {
  override name = 'LeadershipLostError';
  constructor(
    readonly election: string,
    readonly term: number | null,
    readonly reason: LeadershipLostReason,
    cause?: unknown,
  ) {
    super(
      reason === 'not-leader'
        ? `Not the leader of "${election}": the lease-checked transaction did not run (wait with waitForLeadership() and try again)`
        : reason === 'lease-not-held'
          ? `The lease of "${election}" is no longer held by term ${term}: the lease-checked transaction did not run`
          : `The lease-checked transaction of "${election}" (term ${term}) ran past its timeout and was rolled back; pass a larger timeout if the work needs it`,
      { cause },
    );
  }
}
