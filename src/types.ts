/**
 * The shapes the public API speaks in. Types only: this file has no runtime code, so any
 * layer can import it without pulling in another.
 */
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { DrizzleLeaderError, ElectorOperation } from './errors.js';

export type { ElectorOperation } from './errors.js';

/** Any Drizzle PostgreSQL database object (postgres.js, node-postgres, HTTP drivers, ...). */
// biome-ignore lint/suspicious/noExplicitAny: any schema and driver result shape is accepted
export type LeaderDatabase = PgDatabase<PgQueryResultHKT, any, any>;

/** A leadership: one row of the lease table as this library hands it out. */
export interface Lease {
  readonly name: string;
  readonly term: number;
  readonly leaderId: string;
  /** When the database elected this term (database clock). */
  readonly electedAt: Date;
  /** When the lease expires by the database clock, as of the last read or renewal. Informational: trust is decided locally. */
  readonly expiresAt: Date;
}

/** A lease as read from the table, with the time left computed by the server. */
export interface LeaderInfo extends Lease {
  /** `expires_at - now()` in ms as the database saw it at the read; zero or negative once expired. */
  readonly remainingMs: number;
  /** When `requestResign` asked this term to step down (database clock), or null. */
  readonly resignRequestedAt: Date | null;
}

/** Why a leadership ended. */
export type LossReason =
  /** `resign()` or a `request_resign` notification. */
  | 'resigned'
  /** `stop()`. */
  | 'stopped'
  /** A renewal matched no row: the lease expired or another candidate holds it. */
  | 'renewal-denied'
  /** A renewal found the row gone and inserted a new one: the old term ended, a new one began. */
  | 'term-replaced'
  /** No renewal succeeded before the trust deadline (database slow, unreachable, or this process paused). */
  | 'trust-expired';

export type LeadershipEvent =
  | { readonly type: 'gained'; readonly term: number; readonly lease: Lease }
  | { readonly type: 'lost'; readonly term: number; readonly reason: LossReason };

export type LeadershipListener = (event: LeadershipEvent) => void | Promise<void>;

/** Runs while this elector leads; `signal` aborts the moment that leadership ends, for any reason. */
export type LeaderTask = (signal: AbortSignal, lease: Lease) => void | Promise<void>;

/** What `runWhileLeader` returns. */
export interface LeaderRun {
  /** Stops further runs and aborts the current one (its signal); idempotent. */
  cancel(): void;
  /** Resolves once the runs are over (`cancel()`, or the elector stopped) and the last one has returned. Never rejects. */
  readonly done: Promise<void>;
  /** Whether a run of the task is in progress now. */
  readonly running: boolean;
  [Symbol.dispose](): void;
}

/** Running counts of what an elector did; `elector.stats` returns a copy. */
export interface ElectorStats {
  /** Election statements sent, and how they ended. */
  elections: { won: number; denied: number; failed: number };
  /** Renewal statements sent, and how they ended. */
  renewals: { ok: number; denied: number; failed: number };
  /** Leaderships ended, whatever the reason. */
  leadershipsLost: number;
  /** Notifications received on the channel, and how many were malformed or not ours. */
  notifications: { received: number; ignored: number };
}

/**
 * Metrics hooks: called at every outcome so counters and latencies can go to any metrics
 * system (`openTelemetryHooks(meter)` maps them onto OpenTelemetry). A throwing hook is
 * logged and otherwise ignored.
 */
export interface ElectorHooks {
  /** An election statement finished: won, denied (someone holds the lease) or failed. */
  election?(outcome: 'won' | 'denied' | 'failed', durationMs: number): void;
  /** A renewal statement finished: ok, denied (lease lost) or failed. */
  renewal?(outcome: 'ok' | 'denied' | 'failed', durationMs: number): void;
  /**
   * Leadership gained. `sinceNotificationMs`: time from the `resigned` notification that woke
   * this follower to the win, when a notification woke it (the local part of a handoff).
   */
  gained?(term: number, details: { sinceNotificationMs?: number }): void;
  /** Leadership ended. */
  lost?(term: number, reason: string, heldMs: number): void;
  /** An error the elector handled (it retries); `error.cause` holds the driver's error. */
  error?(error: DrizzleLeaderError, operation: ElectorOperation): void;
}

/**
 * The logging shape the elector writes to: pino's (`logger.warn({ err }, 'msg')`), which
 * bunyan, pino child loggers and most structured loggers accept.
 */
export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
