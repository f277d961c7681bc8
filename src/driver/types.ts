import type { LeaderDatabase } from '../types.js';

/**
 * The driver contract: everything the library needs from a Drizzle Postgres driver beyond
 * plain Drizzle queries, in one place. This file imports no implementation; each adapter
 * (`postgres-js.ts`, `node-postgres.ts`) fulfils it in a thin file of its own, and
 * `detect.ts` picks one.
 */

/** Events of one dedicated LISTEN connection. */
export interface ListenEvents {
  notification(channel: string, payload: string): void;
  /** The connection dropped (not called after `close()`). */
  closed(error?: unknown): void;
}

/**
 * One dedicated connection for LISTEN. The notifier calls one method at a time, each within a
 * bound: a session that does not answer is treated as dead. Channels arrive unquoted.
 */
export interface ListenSession {
  listen(channel: string): Promise<void>;
  unlisten(channel: string): Promise<void>;
  /**
   * Proves the session still delivers: throws (or never settles) when it is gone. `channel` is
   * one channel already listened to, or undefined before the first.
   */
  heartbeat(channel: string | undefined): Promise<void>;
  close(): Promise<void>;
}

/** Opens dedicated LISTEN connections. */
export interface ListenDriver {
  open(events: ListenEvents): Promise<ListenSession>;
}

/** Runs `fn` with raw statements on one connection held for its whole duration (session-level advisory locks). */
export type WithSession = <T>(fn: (run: (text: string) => Promise<void>) => Promise<T>) => Promise<T>;

/**
 * Server-side bounds for every statement on the library's own connections, sent as session
 * settings when a connection opens (so they cost no round trip): `statement_timeout`,
 * `lock_timeout`, and `idle_in_transaction_session_timeout`, which ends the session of a
 * process frozen or partitioned inside a transaction, releasing its row locks.
 */
export interface SessionBounds {
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly idleInTransactionTimeoutMs: number;
}

/** See `DriverCapabilities.guardTransaction`. */
export interface TransactionGuard {
  identified(tx: object): void;
  end(): void;
}

/** One connection checked out for one lease-checked transaction: see `DriverCapabilities.checkOut`. */
export interface CheckedOut {
  /** Drizzle's `transaction(fn, config)` on this connection alone: Drizzle neither checks it out nor gives it back. */
  transaction(fn: (tx: unknown) => Promise<unknown>, config: object | undefined): Promise<unknown>;
  /** Whether the connection has already failed or ended (a statement sent now cannot reach the server). */
  readonly lost: boolean;
  /** Gives the connection back to its pool; `broken` (a BEGIN, COMMIT or ROLLBACK failed: its state is unknown) makes the pool discard it. */
  release(broken: boolean): void;
}

/** A small pool the library owns, made from the application client's settings: nobody else can hold its connections. */
export interface OwnPool {
  readonly db: LeaderDatabase;
  /** Destroys every connection now (a statement passed its deadline: its connection may be dead); the pool reconnects on next use. */
  reset(): void;
  /** Ends the pool; connections that do not close within a second are destroyed. */
  close(): Promise<void>;
}

/**
 * Opens an own pool: `session` null opens it without session settings (for poolers that refuse
 * them); `genericPlans` adds `plan_cache_mode = force_generic_plan` to them (see
 * lease/connection.ts); `connectTimeoutMs` bounds each connection attempt on the client.
 */
export type OpenOwnPool = (options: {
  readonly session: SessionBounds | null;
  readonly genericPlans: boolean;
  readonly connectTimeoutMs: number;
}) => Promise<OwnPool>;

/**
 * What a database object can do, found once per object by `detectDriver`. A capability is
 * null when the driver cannot provide it (HTTP drivers): the library then runs without it,
 * poll-only for `listen`, and says so once.
 */
export interface DriverCapabilities {
  /** The driver client behind the Drizzle object (`db.$client`): the key the LISTEN connection is shared under. */
  readonly client: object | null;
  /** Dedicated LISTEN connections, or null: poll-only. */
  readonly listen: ListenDriver | null;
  /** Interactive transactions on one connection (BEGIN ... COMMIT): lease-checked transactions need them. */
  readonly transactions: boolean;
  /**
   * Guards one lease-checked transaction's connection from checkout to release. The server may
   * end that connection (its timeouts, the elector ending it, a restart): a driver that would
   * turn that into an uncaught 'error' event (node-postgres: a checked-out client has no
   * listener, and a client whose connection ends emits 'error' even while a query runs) gets a
   * listener for exactly that long. Called before the transaction starts; `identified(tx)` once
   * the transaction's `tx` exists; `end()` after it settled.
   */
  readonly guardTransaction: (() => TransactionGuard) | null;
  /**
   * Checks out the connection a lease-checked transaction runs on, waiting at most `deadlineMs`
   * for the pool; null (or a call answering null): Drizzle's `db.transaction` checks one out
   * itself. Needed for node-postgres pools: drizzle-orm (0.45) sends BEGIN outside the
   * try/finally that gives the client back, so a BEGIN that fails (its connection ended at that
   * moment) keeps the client from its pool for good (drizzle-team/drizzle-orm#6023). A few
   * such failures leave the pool empty: every later transaction waits forever for a client,
   * while the lease is still renewed on the library's own connections.
   */
  readonly checkOut: ((db: LeaderDatabase, deadlineMs: number) => Promise<CheckedOut | null>) | null;
  /**
   * Whether a transaction runs on a connection the application's other queries cannot reach
   * meanwhile (a pool's checked-out client, postgres.js's reserved connection, PGlite, whose
   * other queries wait for the transaction to end). False for a bare node-postgres `Client`,
   * where the application's next query is sent on the same session behind the transaction's:
   * answering the caller before the transaction has ended would let that query run inside it
   * (and be rolled back with it), so there the caller waits.
   */
  readonly exclusiveTransactions: boolean;
  /**
   * Whether the server may end a lease-checked transaction's whole session while one of its
   * queries runs (`transaction_timeout`, `pg_terminate_backend`) without harm to the driver.
   * When false, such transactions are ended by cancelling their statement instead and by the
   * server's idle timeout, which only fires between queries.
   */
  readonly sessionEndSafe: boolean;
  /**
   * Whether a failure inside a transaction means its connection is gone, and the driver must not
   * be handed the failure (it would answer with a ROLLBACK on that connection), or null. Only
   * postgres.js needs it: its ROLLBACK written to a closed connection throws from a timer
   * (porsager/postgres#1208), while its transaction has already rejected with the close.
   */
  readonly connectionGone: ((error: unknown) => boolean) | null;
  /** A dedicated session for session-level advisory locks (migrations), or null. */
  readonly session: WithSession | null;
  /** The library's own pool for election statements, or null: statements then go through `db` itself (HTTP drivers). */
  readonly ownPool: OpenOwnPool | null;
}
