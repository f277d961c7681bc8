/**
 * Looking at and steering an election without campaigning in it: read the leader, watch
 * changes, ask the leader to step down. For dashboards, operators and the CLI.
 */
import { listenDriverFor } from './driver.js';
import { InvalidOptionError } from './errors.js';
import { NOTIFICATION_VERSION, parseNotification } from './notification.js';
import { notifierFor } from './notifier.js';
import { checkChannel, checkDuration, checkLabel, checkTable, ELECTOR_DEFAULTS } from './options.js';
import type { LeaderDatabase, LeaseRecord } from './queries.js';
import * as queries from './queries.js';
import { type LeaderTable, riverLeader } from './schema.js';

export interface ElectionRef {
  /** Election name. Default `'default'`. */
  name?: string;
  /** Lease table from `createLeaderTable()`. Default `riverLeader`. */
  table?: LeaderTable;
  /** NOTIFY channel. Default `'river_leadership'`. */
  channel?: string;
}

/** The current holder of a lease as the database sees it. */
export interface LeaderInfo {
  readonly name: string;
  readonly leaderId: string;
  readonly term: number;
  readonly electedAt: Date;
  readonly expiresAt: Date;
  /** Lease time left by the database clock at the read, in ms. */
  readonly remainingMs: number;
}

function resolveRef(ref: ElectionRef = {}) {
  return {
    name: checkLabel('name', ref.name ?? ELECTOR_DEFAULTS.name),
    table: checkTable('table', ref.table ?? riverLeader),
    channel: checkChannel('channel', ref.channel ?? ELECTOR_DEFAULTS.channel),
  };
}

/** The current leader of an election, or null when nobody holds an unexpired lease. */
export async function getLeader(db: LeaderDatabase, ref: ElectionRef = {}): Promise<LeaderInfo | null> {
  const { name, table } = resolveRef(ref);
  const lease = await queries.readLease(db, table, name);
  return lease && lease.remainingMs > 0 ? toInfo(lease) : null;
}

/**
 * Asks whoever leads `name` to resign (a forced handoff). The leader deletes its row with a
 * NOTIFY and waits a moment before campaigning again, so another candidate takes over; it may
 * win again if it is alone. Pass `term` to target one leadership only, so a retried request
 * never unseats the successor.
 */
export async function requestResign(db: LeaderDatabase, ref: ElectionRef & { term?: number } = {}): Promise<void> {
  const { name, channel } = resolveRef(ref);
  const payload: Record<string, unknown> = { v: NOTIFICATION_VERSION, action: 'request_resign', name };
  if (ref.term !== undefined) {
    if (!Number.isSafeInteger(ref.term) || ref.term <= 0) throw new InvalidOptionError('term', ref.term, 'a positive integer term');
    payload.term = ref.term;
  }
  await queries.sendNotification(db, channel, JSON.stringify(payload));
}

export interface LeaderChange {
  /** The leader now, or null when the election has none. */
  readonly leader: LeaderInfo | null;
  /** The leader before this change (null at first report or when there was none). */
  readonly previous: LeaderInfo | null;
}

export interface WatchOptions extends ElectionRef {
  /** Longest time between two reads of the table, in ms, in case a notification is lost. Default 5000. */
  pollInterval?: number;
  /** Stops the watch when aborted. */
  signal?: AbortSignal;
  /** Called when a read fails (the watch keeps going). */
  onError?: (error: unknown) => void;
}

export interface LeaderWatch {
  /** Stops watching and releases the LISTEN connection share. */
  stop(): Promise<void>;
}

/**
 * Observes an election without campaigning: calls `listener` with the current leader at once,
 * then whenever the leader or term changes. Notifications trigger an immediate read; a read also
 * runs when the current lease can have expired and at least every `pollInterval`.
 */
export function watchLeader(db: LeaderDatabase, ref: WatchOptions, listener: (change: LeaderChange) => void): LeaderWatch {
  const { name, table, channel } = resolveRef(ref);
  const pollInterval = checkDuration('pollInterval', ref.pollInterval ?? ELECTOR_DEFAULTS.renewInterval);
  let previous = null as LeaderInfo | null;
  let reported = false;
  let stopped = false;
  let wake: (() => void) | null = null;
  let wakePending = false;
  const wakeUp = () => {
    if (wake) wake();
    else wakePending = true;
  };

  const found = listenDriverFor(db);
  const unlisten = found
    ? notifierFor(found.client, found.driver).subscribe(channel, {
        notification: (payload) => {
          if (parseNotification(payload)?.name === name) wakeUp();
        },
        listening: wakeUp,
        disconnected: (error) => ref.onError?.(error),
      })
    : null;

  const loop = (async () => {
    while (!stopped) {
      let sleepMs = pollInterval;
      try {
        const lease = await queries.readLease(db, table, name);
        const leader = lease && lease.remainingMs > 0 ? toInfo(lease) : null;
        if (!reported || leader?.term !== previous?.term || leader?.leaderId !== previous?.leaderId) {
          reported = true;
          const change = { leader, previous };
          previous = leader;
          if (!stopped) listener(change);
        } else {
          previous = leader;
        }
        if (leader) sleepMs = Math.min(pollInterval, leader.remainingMs + 5);
      } catch (error) {
        ref.onError?.(error);
      }
      if (stopped) break;
      if (wakePending) {
        wakePending = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, sleepMs);
        function done() {
          clearTimeout(timer);
          wake = null;
          resolve();
        }
        wake = done;
      });
    }
  })();

  const stop = async () => {
    if (stopped) return loop;
    stopped = true;
    wake?.();
    ref.signal?.removeEventListener('abort', onAbort);
    await Promise.all([loop, unlisten?.()]);
  };
  const onAbort = () => void stop();
  if (ref.signal?.aborted) void stop();
  else ref.signal?.addEventListener('abort', onAbort, { once: true });
  return { stop: async () => void (await stop()) };
}

function toInfo(lease: LeaseRecord): LeaderInfo {
  return Object.freeze({ ...lease });
}
