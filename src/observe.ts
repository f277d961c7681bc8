/**
 * Looking at and steering an election without campaigning in it: read the leader, watch
 * changes, ask the leader to step down. For dashboards, operators and the CLI.
 */
import { DrizzleLeaderError, InvalidOptionError } from './errors.js';
import { notifyingIfPossible } from './lease/notify-fallback.js';
import * as statements from './lease/statements.js';
import { subscribeChannel } from './listen/notifier.js';
import { parseNotification } from './listen/payload.js';
import { checkChannel, checkDuration, checkLabel, checkTable, ELECTOR_DEFAULTS, tableLabel } from './options.js';
import { type LeaderTable, riverLeader } from './schema.js';
import type { LeaderDatabase, LeaderInfo } from './types.js';
import { errorCode, findCause } from './util/cause.js';
import { Wakeup } from './util/wakeup.js';

export interface ElectionRef {
  /** Election name. Default `'default'`. */
  name?: string;
  /** Lease table from `createLeaderTable()`. Default `riverLeader`. */
  table?: LeaderTable;
  /** NOTIFY channel. Default `'river_leadership'`. */
  channel?: string;
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
  const lease = await statements.readLease(db, table, name);
  return lease && lease.remainingMs > 0 ? lease : null;
}

/**
 * Every election's lease in the table, ordered by name, expired ones included
 * (`remainingMs <= 0`): what an operator's status view shows. Reads only; campaigns in nothing.
 * The library's own rows (elector-group members, node-cron claims: names starting with
 * `drizzle-leader:`) are left out unless `internal: true`.
 */
export async function listLeases(db: LeaderDatabase, ref: Pick<ElectionRef, 'table'> & { internal?: boolean } = {}): Promise<LeaderInfo[]> {
  if (ref.internal !== undefined && typeof ref.internal !== 'boolean')
    throw new InvalidOptionError('internal', ref.internal, 'true or false');
  return statements.readLeases(db, checkTable('table', ref.table ?? riverLeader), { internal: ref.internal ?? false });
}

/**
 * Asks whoever leads `name` in `table` to resign (a forced handoff). The request is a write to
 * the lease row (so it needs UPDATE privilege on the table) plus a NOTIFY that makes the
 * leader look at once; the leader reads the request with its renewal, deletes its row with a
 * NOTIFY and waits a moment before campaigning again, so another candidate takes over (it may
 * win again if it is alone). A lost notification only delays the handoff to the next renewal.
 * Pass `term` to target one leadership only, so a retried request never unseats the successor.
 * Resolves with the leadership that was asked, or null when no live lease matched.
 */
export async function requestResign(
  db: LeaderDatabase,
  ref: ElectionRef & { term?: number } = {},
): Promise<{ term: number; leaderId: string } | null> {
  const { name, table, channel } = resolveRef(ref);
  if (ref.term !== undefined && (!Number.isSafeInteger(ref.term) || ref.term <= 0)) {
    throw new InvalidOptionError('term', ref.term, 'a positive integer term');
  }
  try {
    // A full NOTIFY queue must not stop the request: the leader also reads it with its next renewal.
    return await notifyingIfPossible(
      channel,
      (ch) => statements.requestResign(db, table, { name, term: ref.term, channel: ch }),
      () => {},
    );
  } catch (error) {
    if (errorCode(error) !== '42501') throw error;
    const denied = findCause<Error & { code?: unknown }>(error, (e) => e.code === '42501');
    throw new DrizzleLeaderError(
      `requestResign needs UPDATE privilege on ${tableLabel(table)}: a forced handoff is a write to the lease row, ` +
        `not just a notification (${denied?.message ?? 'permission denied'}); grant it to the operator role that sends it`,
      { cause: error },
    );
  }
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
  const wakeup = new Wakeup();

  const unlisten = subscribeChannel(db, true, channel, {
    notification: (payload) => {
      if (parseNotification(payload)?.name === name) wakeup.wake();
    },
    listening: () => wakeup.wake(),
    disconnected: (error) => ref.onError?.(error),
  });

  const loop = (async () => {
    while (!stopped) {
      let sleepMs = pollInterval;
      wakeup.clear();
      try {
        const lease = await statements.readLease(db, table, name);
        const leader = lease && lease.remainingMs > 0 ? lease : null;
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
      if (!stopped) await wakeup.sleep(sleepMs);
    }
  })();

  const stop = async () => {
    if (stopped) return loop;
    stopped = true;
    wakeup.wake();
    ref.signal?.removeEventListener('abort', onAbort);
    await Promise.all([loop, unlisten?.()]);
  };
  const onAbort = () => void stop();
  if (ref.signal?.aborted) void stop();
  else ref.signal?.addEventListener('abort', onAbort, { once: true });
  return { stop: async () => void (await stop()) };
}
