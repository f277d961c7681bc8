/**
 * What the single elector and the elector group share around lease-checked transactions and
 * the ordered drain, so the two give the same guarantees from one implementation: the checks
 * `transaction()` makes before it runs anything, the once-per-instance check of the lease key,
 * the log line and the ending of work that overran `drainTimeout`, and how an overrunning
 * transaction is ended from the leader's own connection.
 */
import type { PgTransactionConfig } from 'drizzle-orm/pg-core';
import { detectDriver } from '../driver/detect.js';
import type { DriverCapabilities } from '../driver/types.js';
import { InvalidOptionError, LeaseTableOutdatedError, UnsupportedDriverError } from '../errors.js';
import { endTransaction, hasLeaseKey } from '../lease/transaction.js';
import { checkDuration, tableLabel } from '../options.js';
import type { LeaderTable } from '../schema.js';
import type { LeaderDatabase, Logger } from '../types.js';
import { withDeadline } from '../util/deadline.js';
import type { LeaseTransactionConfig } from './lease-transaction.js';
import type { LeaderWork, WorkItem } from './work.js';

export interface PreparedLeaseTransaction {
  readonly timeoutMs: number;
  readonly driver: DriverCapabilities;
  /** Drizzle's own part of the config, or undefined when there is none (Drizzle then sends a plain BEGIN). */
  readonly config: PgTransactionConfig | undefined;
}

/**
 * Validates a `transaction()` call before anything runs: a refusal is a programming error, so
 * it must not depend on whether this process leads at the moment.
 */
export function prepareLeaseTransaction(
  db: LeaderDatabase,
  fn: unknown,
  config: LeaseTransactionConfig,
  options: { readonly ttl: number; readonly safetyMargin: number },
  caller: string,
): PreparedLeaseTransaction {
  if (typeof fn !== 'function') throw new InvalidOptionError('fn', fn, 'a function (tx, lease, signal) => Promise<T>');
  if (config === null || typeof config !== 'object') throw new InvalidOptionError('config', config, 'an object');
  const { timeout, ...drizzleConfig } = config;
  checkTransactionConfig(drizzleConfig);
  const timeoutMs = timeout === undefined ? options.ttl - options.safetyMargin : checkDuration('timeout', timeout);
  const driver = detectDriver(db);
  if (!driver.transactions) {
    throw new UnsupportedDriverError(`${caller} needs a driver with interactive transactions (postgres.js or node-postgres)`);
  }
  return { timeoutMs, driver, config: Object.keys(drizzleConfig).length > 0 ? drizzleConfig : undefined };
}

const ISOLATION_LEVELS = ['read uncommitted', 'read committed', 'repeatable read', 'serializable'];

/**
 * Drizzle's transaction config, checked before anything is sent: Drizzle writes the values into
 * its BEGIN unchecked, and a BEGIN that fails (node-postgres) leaks its pooled client. A
 * read-only transaction cannot take the lease lock at all (FOR KEY SHARE is refused there), so
 * it is refused here rather than failing at the first statement.
 */
function checkTransactionConfig(config: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(config)) {
    if (key === 'isolationLevel') {
      if (!ISOLATION_LEVELS.includes(value as string)) {
        throw new InvalidOptionError('config.isolationLevel', value, ISOLATION_LEVELS.map((l) => `'${l}'`).join(', '));
      }
    } else if (key === 'accessMode') {
      if (value !== 'read write') {
        throw new InvalidOptionError(
          'config.accessMode',
          value,
          "'read write' (a lease-checked transaction locks the lease row, which a read-only transaction cannot; use db.transaction for reads)",
        );
      }
    } else if (key === 'deferrable') {
      if (typeof value !== 'boolean') throw new InvalidOptionError('config.deferrable', value, 'true or false');
    } else if (value !== undefined) {
      throw new InvalidOptionError(`config.${key}`, value, 'one of timeout, isolationLevel, accessMode, deferrable');
    }
  }
}

/** Lease-checked transactions rely on `unique (name, term)` (migration 0002): refuse loudly without it. Checked once per instance. */
export class LeaseKeyCheck {
  #checked: Promise<void> | null = null;

  /** `deadlineMs` bounds the check like any statement (it runs on the application's `db`, whose pool may be busy). */
  ensure(db: LeaderDatabase, table: LeaderTable, deadlineMs: number): Promise<void> {
    this.#checked ??= withDeadline(
      hasLeaseKey(db, table),
      deadlineMs,
      () => `the check of the lease table's key did not answer within ${deadlineMs} ms`,
    ).then((present) => {
      if (!present) {
        throw new LeaseTableOutdatedError(
          tableLabel(table),
          new Error(
            'the unique (name, term) constraint of migration 0002 is missing; lease-checked transactions would not block a takeover',
          ),
        );
      }
    });
    this.#checked.catch(() => {
      this.#checked = null; // a failed check (connection lost) is made again next time
    });
    return this.#checked;
  }
}

/**
 * After a drain that timed out: says what overran, and ends what can be ended (an open
 * transaction's lock would hold the successor back anyway).
 */
export function giveUpOverrun(
  logger: Logger,
  overran: readonly WorkItem[],
  context: { readonly name: string; readonly term: number; readonly drainTimeout: number },
): void {
  const { name, term, drainTimeout } = context;
  for (const item of overran) {
    logger.warn(
      { name, term, task: item.label, drainTimeout },
      `drizzle-leader: ${item.label} did not finish within drainTimeout (${drainTimeout} ms); giving up the lease anyway`,
    );
    item.stop?.();
  }
}

/**
 * Ends one open lease-checked transaction from the leader's own connection; bounded,
 * best-effort. Where the driver survives it, its session is terminated; elsewhere its running
 * statement is cancelled, tried every 100 ms while it stays open (an idle transaction has
 * nothing to cancel until it sends its next statement), until the server's own idle timeout
 * must have ended it.
 */
export async function endOverrunningTransaction(input: {
  /** The leader's renew-and-resign connection, or null before its loop opened it. */
  readonly leadDb: LeaderDatabase | null;
  /** The application's database the transaction runs on (its driver decides how to end it). */
  readonly db: LeaderDatabase;
  readonly item: WorkItem;
  readonly work: LeaderWork;
  readonly ttl: number;
  readonly deadlineMs: number;
  readonly monotonic: () => number;
  readonly logger: Logger;
  readonly name: string;
}): Promise<void> {
  const { leadDb: db, item, work, logger } = input;
  const open = item.open;
  if (!db || !open) return;
  const how = detectDriver(input.db).sessionEndSafe ? 'terminate' : 'cancel';
  const until = input.monotonic() + 2 * (item.timeoutMs ?? input.ttl) + 1_000;
  do {
    try {
      await withDeadline(endTransaction(db, open, how), input.deadlineMs, () => 'ending a transaction did not answer');
    } catch (error) {
      logger.warn({ err: error, name: input.name, pid: open.pid }, 'drizzle-leader: could not end an overrunning transaction');
    }
    if (how === 'terminate') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  } while (work.has(item) && input.monotonic() < until);
}
