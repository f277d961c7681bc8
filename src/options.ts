/**
 * Options: defaults, validation and the checks of every name that reaches the database. A
 * wrong value is refused here, at the door, with a typed error that says what is allowed.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { getTableConfig } from 'drizzle-orm/pg-core';
import { InvalidOptionError, ReservedNameError } from './errors.js';
import { isReservedName, RESERVED_PREFIX } from './lease/reserved.js';
import { DEFAULT_LOGGER } from './logging.js';
import { type LeaderTable, riverLeader } from './schema.js';
import type { ElectorHooks, Logger } from './types.js';
import { type Clock, systemClock } from './util/clock.js';
import { checkIdentifier } from './util/identifier.js';

/** Defaults for every elector option, in milliseconds where a time. Frozen: read, don't mutate. */
export const ELECTOR_DEFAULTS = Object.freeze({
  name: 'default',
  ttl: 15_000,
  renewInterval: 5_000,
  safetyMargin: 1_000,
  listen: true,
  channel: 'river_leadership',
});

/**
 * The smallest times that work, in ms. Below them an elector spends its life electing (a ttl of
 * 3 ms meant 214 elections a second), and values like `ttl: 15` are almost always seconds
 * given where milliseconds are expected.
 */
export const MINIMUMS = Object.freeze({ ttl: 500, renewInterval: 50, safetyMargin: 50 });

export interface ElectorOptions {
  /** Election name: independent elections share the table, one row each. Default `'default'`. */
  name?: string;
  /** This candidate's id, 1..127 characters, unique among candidates. Default: host, pid and a random suffix. */
  id?: string;
  /** Lease length in ms, counted by the database from each successful elect/renew. Default 15000. */
  ttl?: number;
  /** How often the leader renews, in ms. Default 5000. `renewInterval + safetyMargin` must be below `ttl`. */
  renewInterval?: number;
  /** How long before the lease can expire the leader stops trusting it, in ms. Default 1000. */
  safetyMargin?: number;
  /**
   * LISTEN for resignations so followers take over in milliseconds. `false` = poll-only.
   * `{ url }` = LISTEN through that (direct or session-pooled) connection string while
   * statements go through `db`, e.g. behind a transaction-mode pooler. Default true.
   */
  listen?: boolean | { url: string };
  /** NOTIFY channel shared by candidates and watchers of the table. Default `'river_leadership'`. */
  channel?: string;
  /** A lease table from `createLeaderTable()`. Default: `riverLeader`. */
  table?: LeaderTable;
  /** Receives the elector's diagnostics; pino-compatible. Default: warnings and errors to stderr, rate-limited; pass `SILENT_LOGGER` for none. */
  logger?: Logger;
  /** Metrics hooks (counters, latencies, handled errors); see `openTelemetryHooks`. */
  hooks?: ElectorHooks;
  /** The local clocks the trust window is measured with. Default: `performance.now()` and `Date.now()`. For tests. */
  clock?: Clock;
  /**
   * On `stop()` and `resign()`, how long to wait (ms) for running `runWhileLeader` tasks and
   * open lease-checked transactions to finish before the lease is given up; the lease stays
   * renewed meanwhile, so no successor starts while the old work still runs. 0 = do not wait.
   * Default: 5000, or the trust window (`ttl - safetyMargin`) if that is shorter.
   */
  drainTimeout?: number;
}

/** Options after defaults and validation: what the elector actually runs with. */
export interface ResolvedElectorOptions {
  readonly name: string;
  readonly id: string;
  readonly ttl: number;
  readonly renewInterval: number;
  readonly safetyMargin: number;
  readonly listen: boolean | { readonly url: string };
  readonly channel: string;
  readonly table: LeaderTable;
  readonly logger: Logger;
  readonly hooks: ElectorHooks;
  readonly clock: Clock;
  readonly drainTimeout: number;
}

/** The default drain wait, before it is capped by the trust window. */
const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;

/** Every option `createElector` takes (the group takes these but `name` and `hooks`, plus its own). */
export const ELECTOR_OPTION_NAMES: ReadonlySet<string> = new Set([
  'name',
  'id',
  'ttl',
  'renewInterval',
  'safetyMargin',
  'listen',
  'channel',
  'table',
  'logger',
  'hooks',
  'clock',
  'drainTimeout',
]);

function checkDrainTimeout(options: ElectorOptions): number {
  const value = options.drainTimeout;
  if (value === undefined) {
    const ttl = typeof options.ttl === 'number' ? options.ttl : ELECTOR_DEFAULTS.ttl;
    const margin = typeof options.safetyMargin === 'number' ? options.safetyMargin : ELECTOR_DEFAULTS.safetyMargin;
    return Math.max(0, Math.min(DEFAULT_DRAIN_TIMEOUT_MS, ttl - margin));
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidOptionError('drainTimeout', value, 'a finite number of ms, 0 or more (times are in ms)');
  }
  return value;
}

/** Merges defaults once and validates everything at the door: a wrong value never reaches the database. */
export function resolveElectorOptions(options: ElectorOptions = {}): ResolvedElectorOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError('options', options, 'an object');
  }
  for (const key of Object.keys(options)) {
    if (!ELECTOR_OPTION_NAMES.has(key)) {
      throw new InvalidOptionError(key, (options as Record<string, unknown>)[key], `one of ${[...ELECTOR_OPTION_NAMES].join(', ')}`);
    }
  }
  const resolved: ResolvedElectorOptions = Object.freeze({
    name: checkElectionName('name', options.name ?? ELECTOR_DEFAULTS.name),
    id: checkLabel('id', options.id ?? defaultCandidateId()),
    ttl: checkDuration('ttl', options.ttl ?? ELECTOR_DEFAULTS.ttl, MINIMUMS.ttl),
    renewInterval: checkDuration('renewInterval', options.renewInterval ?? ELECTOR_DEFAULTS.renewInterval, MINIMUMS.renewInterval),
    safetyMargin: checkDuration('safetyMargin', options.safetyMargin ?? ELECTOR_DEFAULTS.safetyMargin, MINIMUMS.safetyMargin),
    listen: checkListen('listen', options.listen ?? ELECTOR_DEFAULTS.listen),
    channel: checkChannel('channel', options.channel ?? ELECTOR_DEFAULTS.channel),
    table: checkTable('table', options.table ?? riverLeader),
    logger: checkLogger('logger', options.logger ?? DEFAULT_LOGGER),
    hooks: checkHooks('hooks', options.hooks ?? {}),
    clock: checkClock('clock', options.clock ?? systemClock),
    drainTimeout: checkDrainTimeout(options),
  });
  // A leader must renew, and hear back, well before it stops trusting its lease; TTL equal to
  // the renew interval made healthy River leaders lose leadership (River #216).
  if (resolved.renewInterval + resolved.safetyMargin >= resolved.ttl) {
    throw new InvalidOptionError(
      'ttl',
      resolved.ttl,
      `a number of ms greater than renewInterval + safetyMargin (${resolved.renewInterval} + ${resolved.safetyMargin})`,
    );
  }
  return resolved;
}

/** A unique-per-process candidate id that also tells an operator where the leader runs. */
function defaultCandidateId(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`.slice(-127);
}

/** Names and ids are stored in a column with CHECK (char_length between 1 and 127): count code points like Postgres. */
export function checkLabel(option: string, value: unknown): string {
  // A lone UTF-16 surrogate is stored as U+FFFD: two JS names would share one row, and the
  // name in a notification would never match the elector's.
  if (typeof value !== 'string' || value.length === 0 || [...value].length > 127 || value.includes('\0') || /\p{Cs}/u.test(value)) {
    throw new InvalidOptionError(option, value, 'a string of 1 to 127 characters without NUL or lone UTF-16 surrogates');
  }
  return value;
}

/** An election name: a label outside the library's own namespace (its member rows and cron claims). */
export function checkElectionName(option: string, value: unknown): string {
  const name = checkLabel(option, value);
  if (isReservedName(name)) throw new ReservedNameError(option, name, RESERVED_PREFIX);
  return name;
}

/** A time in milliseconds, at least `minimum`; a value that looks like seconds is named as such. */
export function checkDuration(option: string, value: unknown, minimum = 1): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < minimum || value > 2_147_483_647) {
    const seconds = typeof value === 'number' && value > 0 && value < minimum && value * 1000 <= 2_147_483_647;
    throw new InvalidOptionError(
      option,
      value,
      `a finite number of milliseconds from ${minimum} to 2147483647` +
        (seconds ? ` (times are in milliseconds: for ${value} seconds write ${value * 1000})` : ''),
    );
  }
  return value;
}

function checkListen(option: string, value: unknown): boolean | { url: string } {
  if (typeof value === 'boolean') return value;
  const url = (value as { url?: unknown } | null)?.url;
  if (typeof url === 'string' && /^postgres(ql)?:\/\//.test(url) && Object.keys(value as object).length === 1) {
    return Object.freeze({ url });
  }
  throw new InvalidOptionError(option, value, 'true, false, or { url: "postgres://..." } (a direct connection for LISTEN)');
}

/** Channel names are identifiers to LISTEN (quoted) and text to pg_notify. */
export const checkChannel = checkIdentifier;

const LEASE_COLUMNS = ['name', 'leaderId', 'electedAt', 'expiresAt', 'term'] as const;

export function checkTable(option: string, value: unknown): LeaderTable {
  let ok = false;
  try {
    const config = getTableConfig(value as LeaderTable);
    const columns = new Set(config.columns.map((c) => c.name));
    ok =
      ['name', 'leader_id', 'elected_at', 'expires_at', 'term'].every((c) => columns.has(c)) &&
      LEASE_COLUMNS.every((key) => key in (value as object));
  } catch {
    ok = false;
  }
  if (!ok) throw new InvalidOptionError(option, value, 'riverLeader or a table from createLeaderTable()');
  return value as LeaderTable;
}

const HOOK_NAMES = ['election', 'renewal', 'gained', 'lost', 'error'];

function checkHooks(option: string, value: unknown): ElectorHooks {
  const hooks = value as Record<string, unknown> | null;
  if (!hooks || typeof hooks !== 'object')
    throw new InvalidOptionError(option, value, `an object with optional ${HOOK_NAMES.join(', ')} functions`);
  for (const [key, hook] of Object.entries(hooks)) {
    if (!HOOK_NAMES.includes(key) || (hook !== undefined && typeof hook !== 'function')) {
      throw new InvalidOptionError(`${option}.${key}`, hook, `one of the functions ${HOOK_NAMES.join(', ')}`);
    }
  }
  return value as ElectorHooks;
}

function checkLogger(option: string, value: unknown): Logger {
  const logger = value as Record<string, unknown> | null;
  if (!logger || typeof logger !== 'object' || !['debug', 'info', 'warn', 'error'].every((m) => typeof logger[m] === 'function')) {
    throw new InvalidOptionError(option, value, 'an object with debug, info, warn and error methods (pino-compatible)');
  }
  return value as Logger;
}

function checkClock(option: string, value: unknown): Clock {
  const clock = value as Record<string, unknown> | null;
  if (!clock || typeof clock !== 'object' || typeof clock.monotonic !== 'function' || typeof clock.wall !== 'function') {
    throw new InvalidOptionError(option, value, 'an object with monotonic() and wall() methods returning milliseconds');
  }
  return value as Clock;
}

/** `schema.table` for messages, through Drizzle's public table config. */
export function tableLabel(table: LeaderTable): string {
  const { schema, name } = getTableConfig(table);
  return schema ? `${schema}.${name}` : name;
}
