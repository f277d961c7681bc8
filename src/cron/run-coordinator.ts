/**
 * A node-cron (4.4+) `RunCoordinator` on the lease table: with `distributed: true`, exactly one
 * instance runs each fire.
 *
 * The claim model. node-cron asks every instance `shouldRun(key, ttlMs)` before a fire, with
 * `key = <task name>:<the fire's scheduled time, ISO>` and `ttlMs` = the task's
 * `distributedLease` (30 s by default). The coordinator answers with one INSERT of the row
 * `drizzle-leader:cron:<key>` ... ON CONFLICT DO NOTHING: the one session whose insert lands gets the row's
 * term back (the fire's fencing token) and runs the fire; every other instance, whenever it
 * asks, finds the row and is refused. The row expires `max(ttlMs, retention)` after the claim
 * by the database's clock, and even then keeps refusing until cleanup deletes it.
 *
 * Why clock skew cannot make a fire run twice. The key names the scheduled time, not the
 * moment of asking, so instances whose clocks differ by S seconds ask for the same key S
 * seconds apart (plus up to node-cron's `missedExecutionTolerance`, 1 s by default, for a late
 * timer: a later fire is reported missed, never run). How long the run takes does not matter:
 * the claim is not released when the run completes (releasing it, like a Redis lock's DEL, is
 * exactly what would let an instance with a slow clock run the fire again). So the only way to
 * run a fire twice is to ask for it more than `retention` after the first claim; the default,
 * 10 minutes, is far above the skew of any synchronised fleet. No instance's clock is compared
 * with another's or with the database's: claim times and expiry are the server's `now()`.
 *
 * Not the elector's `elect()` statement: it NOTIFYs every elector and watcher on each win, and
 * it takes over expired rows, which would turn an expired claim into a second run.
 *
 * Fail-closed, as node-cron expects: when the claim cannot be made (database unreachable,
 * statement error, no answer within `timeout`), `shouldRun` logs a warning and throws
 * `RunClaimError`; node-cron then skips the fire on this instance and emits `execution:skipped`
 * with reason `coordinator-error`. A claim whose answer was lost may have committed: then no
 * instance runs that fire. At most once, never twice.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DrizzleLeaderError, InvalidOptionError } from '../errors.js';
import { DEFAULT_LOGGER } from '../logging.js';
import { checkDuration, checkLabel, checkTable } from '../options.js';
import { type LeaderTable, riverLeader } from '../schema.js';
import type { LeaderDatabase, Logger } from '../types.js';
import { settledWithin, withDeadline } from '../util/deadline.js';
import { claim, claimName, deleteExpiredClaims } from './claims.js';

/** Defaults of `createRunCoordinator`, in ms. Frozen: read, don't mutate. */
export const RUN_COORDINATOR_DEFAULTS = Object.freeze({
  retention: 600_000,
  cleanupInterval: 60_000,
  timeout: 5_000,
});

const MINIMUMS = Object.freeze({ retention: 1_000, cleanupInterval: 1_000, timeout: 100 });

/** Won terms remembered for `termOf` at most: a run whose `onComplete` never came cannot grow the map without bound. */
const MAX_REMEMBERED = 1_000;

export interface RunCoordinatorOptions {
  /** A lease table from `createLeaderTable()`. Default: `riverLeader`. */
  table?: LeaderTable;
  /** Stored as `leader_id` of the claims this instance wins, 1..127 characters. Default: host, pid and a random suffix. */
  id?: string;
  /**
   * How long a claim refuses every other instance, in ms, counted by the database from the
   * claim (node-cron's `distributedLease`, if longer, wins). Must exceed the largest clock
   * difference between instances plus node-cron's `missedExecutionTolerance`. Default 600000.
   */
  retention?: number;
  /** At most one cleanup of expired claims per this many ms, per coordinator. Default 60000. */
  cleanupInterval?: number;
  /** Client-side deadline of each statement, in ms. Default 5000. */
  timeout?: number;
  /** Receives warnings (a failed claim or cleanup); pino-compatible. Default: stderr, rate-limited; `SILENT_LOGGER` for none. */
  logger?: Logger;
}

/** A fire could not be claimed (the driver's error or a `DeadlineExceededError` is the `cause`); node-cron skips it on this instance. */
export class RunClaimError extends DrizzleLeaderError {
  override name = 'RunClaimError';
  constructor(
    readonly key: string,
    cause: unknown,
  ) {
    super(`Could not claim the cron fire "${key}", so this instance skips it (fail-closed): ${messageOf(cause)}`, { cause });
  }
}

interface Resolved {
  readonly table: LeaderTable;
  readonly id: string;
  readonly retention: number;
  readonly cleanupInterval: number;
  readonly timeout: number;
  readonly logger: Logger;
}

const KNOWN_OPTIONS = ['table', 'id', 'retention', 'cleanupInterval', 'timeout', 'logger'];

function resolveOptions(options: RunCoordinatorOptions): Resolved {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', options, 'an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.includes(key)) {
      throw new InvalidOptionError(key, (options as Record<string, unknown>)[key], `one of ${KNOWN_OPTIONS.join(', ')}`);
    }
  }
  const logger = options.logger ?? DEFAULT_LOGGER;
  const methods = logger as unknown as Record<string, unknown> | null;
  if (!methods || typeof methods !== 'object' || !['debug', 'info', 'warn', 'error'].every((m) => typeof methods[m] === 'function')) {
    throw new InvalidOptionError('logger', logger, 'an object with debug, info, warn and error methods (pino-compatible)');
  }
  const d = RUN_COORDINATOR_DEFAULTS;
  return Object.freeze({
    table: checkTable('table', options.table ?? riverLeader),
    id: checkLabel('id', options.id ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`.slice(-127)),
    retention: checkDuration('retention', options.retention ?? d.retention, MINIMUMS.retention),
    cleanupInterval: checkDuration('cleanupInterval', options.cleanupInterval ?? d.cleanupInterval, MINIMUMS.cleanupInterval),
    timeout: checkDuration('timeout', options.timeout ?? d.timeout, MINIMUMS.timeout),
    logger,
  });
}

/**
 * Structurally node-cron's `RunCoordinator` (this library does not import node-cron, an
 * optional peer): pass it as a task's `runCoordinator` or to `cron.setRunCoordinator()`.
 */
export class CronRunCoordinator {
  readonly #db: LeaderDatabase;
  readonly #options: Resolved;
  readonly #terms = new Map<string, number>();
  #lastCleanup = Number.NEGATIVE_INFINITY;
  #cleaning: Promise<void> | null = null;

  constructor(db: LeaderDatabase, options: RunCoordinatorOptions = {}) {
    if (!db || typeof (db as { insert?: unknown }).insert !== 'function') {
      throw new InvalidOptionError('db', db, 'a Drizzle PostgreSQL database');
    }
    this.#db = db;
    this.#options = resolveOptions(options);
  }

  /** This coordinator's id: the `leader_id` of the claims it wins. */
  get id(): string {
    return this.#options.id;
  }

  /** Called by node-cron before each fire: true on exactly one instance. Throws `RunClaimError` (node-cron skips the fire) when the claim cannot be made. */
  async shouldRun(key: string, ttlMs: number): Promise<boolean> {
    const { table, id, retention, timeout, logger } = this.#options;
    // node-cron passes `<task name>:<ISO time>`; anything else would be claimed under its
    // String() (undefined as "undefined", the same row as the string), so it is refused.
    if (typeof key !== 'string') throw new InvalidOptionError('key', key, 'a string: node-cron passes "<task name>:<scheduled time, ISO>"');
    const name = claimName(key);
    // A user's `distributedLease` longer than the retention lengthens the claim, never shortens it (Infinity: the longest a claim can be).
    const asked = typeof ttlMs === 'number' && !Number.isNaN(ttlMs) ? Math.min(Math.max(ttlMs, 0), 2_147_483_647) : 0;
    const holdMs = Math.max(retention, asked);
    let term: number | null;
    try {
      term = await withDeadline(claim(this.#db, table, { name, holderId: id, holdMs }), timeout, () => `no answer within ${timeout} ms`);
    } catch (error) {
      logger.warn({ err: error, name: String(key) }, 'cron run claim failed; this instance skips the fire (fail-closed)');
      throw new RunClaimError(String(key), error);
    }
    this.#maybeCleanUp();
    if (term === null) return false;
    if (this.#terms.size >= MAX_REMEMBERED) this.#terms.delete(this.#terms.keys().next().value as string);
    this.#terms.set(String(key), term);
    return true;
  }

  /** Called by node-cron after a run it allowed. The claim row stays: deleting it would let a slow-clocked instance run the fire again. */
  onComplete(key: string): void {
    this.#terms.delete(String(key));
  }

  /**
   * The term (fencing token) of the claim this instance won for `key`, while its run is in
   * progress (node-cron's key is `${task.name}:${context.date.toISOString()}`); undefined otherwise.
   */
  termOf(key: string): number | undefined {
    return this.#terms.get(key);
  }

  /**
   * Deletes expired claim rows (only rows named `drizzle-leader:cron:...` past their expiry, at most 1000 per
   * call) and resolves with how many. Runs on its own at most once per `cleanupInterval`,
   * after a claim; call it yourself to clean up on your own schedule.
   */
  async cleanUp(): Promise<number> {
    const { table, timeout } = this.#options;
    return withDeadline(
      deleteExpiredClaims(this.#db, table),
      timeout,
      () => `cleanup of expired cron claims did not answer within ${timeout} ms`,
    );
  }

  /** Resolves once a cleanup started in the background has finished (or after `timeout`): await it before closing the database client. */
  async settled(): Promise<void> {
    await settledWithin(this.#cleaning, this.#options.timeout);
  }

  #maybeCleanUp(): void {
    const now = performance.now();
    if (this.#cleaning || now - this.#lastCleanup < this.#options.cleanupInterval) return;
    this.#lastCleanup = now;
    this.#cleaning = this.cleanUp().then(
      () => {
        this.#cleaning = null;
      },
      (error: unknown) => {
        this.#cleaning = null;
        this.#options.logger.warn({ err: error }, 'cleanup of expired cron claims failed; it is retried after cleanupInterval');
      },
    );
  }
}

/**
 * A node-cron run coordinator on the lease table: each fire of a `distributed: true` task runs
 * on exactly one instance. Options are validated at once (`InvalidOptionError`).
 */
export function createRunCoordinator(db: LeaderDatabase, options: RunCoordinatorOptions = {}): CronRunCoordinator {
  return new CronRunCoordinator(db, options);
}

function messageOf(error: unknown): string {
  let message = error instanceof Error ? error.message : String(error);
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) message = e.message;
  return message.replace(/\s+/g, ' ').trim();
}
