/**
 * One LISTEN connection per database client, shared by every elector and watcher of the
 * process, kept alive by a supervisor: when the connection drops it reconnects with capped,
 * jittered backoff, LISTENs again on every channel and tells each subscriber, which then
 * re-checks the database (notifications sent while disconnected are lost for good).
 *
 * Drivers only open and close a dedicated connection (`ListenDriver`); everything else lives
 * here once, for all drivers.
 */

import { detectDriver, listenDriverForUrl } from '../driver/detect.js';
import type { ListenDriver, ListenSession } from '../driver/types.js';
import { DeadlineExceededError } from '../errors.js';
import type { LeaderDatabase } from '../types.js';
import { type Backoff, backoffDelay } from '../util/backoff.js';
import { withDeadline } from '../util/deadline.js';
import { type Deferred, deferred } from '../util/deferred.js';
import { Wakeup } from '../util/wakeup.js';

export interface ChannelSubscriber {
  /** How soon a silent connection must be noticed, in ms (a heartbeat runs at this interval; at least 1 s). Default 5 s. */
  readonly heartbeatMs?: number;
  notification(payload: string): void;
  /** LISTEN is (re-)established on a fresh connection: re-check the database now. */
  listening(): void;
  /** The LISTEN connection failed or dropped; the notifier is reconnecting. */
  disconnected(error: unknown): void;
}

/** Reconnect backoff: 100 ms doubling to 5 s, jittered so a fleet does not reconnect in step. */
const RECONNECT_BACKOFF: Backoff = Object.freeze({ initialMs: 100, maxMs: 5_000 });

/** Opening a LISTEN connection gives up after this long (a blackholed server never answers). */
const OPEN_TIMEOUT_MS = 10_000;

/** How long a LISTEN connection nobody subscribes to any more stays open before it is closed. */
const CLOSE_DELAY_MS = 250;

/** Heartbeat interval bounds: a silent connection is noticed within two intervals. */
const HEARTBEAT = Object.freeze({ defaultMs: 5_000, minMs: 1_000 });

type SessionEnd = { kind: 'dropped'; error: unknown } | { kind: 'shutdown' };

export class Notifier {
  readonly #driver: ListenDriver;
  readonly #onEmpty: () => void;
  readonly #subscribers = new Map<string, Set<ChannelSubscriber>>();
  /** Channels LISTENed on the current session. */
  readonly #listening = new Set<string>();
  #session: ListenSession | null = null;
  #sessionEnd: Deferred<SessionEnd> | null = null;
  #supervisor: Promise<void> | null = null;
  readonly #backoff = new Wakeup();
  /** When (performance.now()) the last notification arrived: a sign of life of the connection. */
  #heardAt = Number.NEGATIVE_INFINITY;
  /** The tail of the current session's command queue. */
  #commands: Promise<void> = Promise.resolve();

  constructor(driver: ListenDriver, onEmpty: () => void) {
    this.#driver = driver;
    this.#onEmpty = onEmpty;
  }

  /** Subscribes to one channel; the returned function unsubscribes and resolves once the connection is released. */
  subscribe(channel: string, subscriber: ChannelSubscriber): () => Promise<void> {
    const set = this.#subscribers.get(channel) ?? new Set<ChannelSubscriber>();
    this.#subscribers.set(channel, set);
    set.add(subscriber);
    if (!this.#supervisor) {
      this.#supervisor = this.#supervise();
    } else if (this.#session && this.#listening.has(channel)) {
      queueMicrotask(() => safely(() => subscriber.listening()));
    } else if (this.#session) {
      void this.#listenOn(this.#session, channel);
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      await this.#unsubscribe(channel, subscriber);
    };
  }

  /**
   * Waits for nothing on the network: an UNLISTEN, or closing the connection when the last
   * subscriber leaves, happens in the background (bounded), so `stop()` never waits on a
   * partitioned or slow LISTEN connection. A channel nobody here wants is UNLISTENed at once,
   * even when the connection is about to close: until it does (a moment later, see
   * CLOSE_DELAY_MS) every NOTIFY would still wake its backend and this process.
   */
  async #unsubscribe(channel: string, subscriber: ChannelSubscriber): Promise<void> {
    const set = this.#subscribers.get(channel);
    set?.delete(subscriber);
    if (set && set.size === 0) {
      this.#subscribers.delete(channel);
      const session = this.#session;
      if (session && this.#listening.delete(channel)) {
        this.#run(`UNLISTEN ${channel}`, () => session.unlisten(channel)).catch(() => {});
      }
    }
    if (this.#subscribers.size === 0) {
      this.#onEmpty();
      this.#sessionEnd?.resolve({ kind: 'shutdown' });
      this.#backoff.wake();
    }
  }

  /** The heartbeat interval the current subscribers need. */
  #heartbeatMs(): number {
    let ms: number = HEARTBEAT.defaultMs;
    for (const set of this.#subscribers.values()) {
      for (const subscriber of set) if (subscriber.heartbeatMs !== undefined) ms = Math.min(ms, subscriber.heartbeatMs);
    }
    return Math.max(HEARTBEAT.minMs, ms);
  }

  /**
   * Runs one command on the session, after the ones before it (a driver may not take two at
   * once on one connection) and within a bound: a session that does not answer is dead.
   */
  #run(what: string, command: () => Promise<void>): Promise<void> {
    const bound = this.#heartbeatMs();
    const run = this.#commands.then(() => this.#answered(command(), bound, what));
    this.#commands = run.catch(() => {});
    return run;
  }

  /** Opens a session within OPEN_TIMEOUT_MS; one that opens later is closed at once. */
  async #open(end: Deferred<SessionEnd>): Promise<ListenSession> {
    const opening = this.#driver.open({
      notification: (channel, payload) => this.#dispatch(channel, payload),
      closed: (error) => end.resolve({ kind: 'dropped', error: error ?? new Error('LISTEN connection closed') }),
    });
    try {
      return await withDeadline(opening, OPEN_TIMEOUT_MS, () => `LISTEN connection did not open within ${OPEN_TIMEOUT_MS} ms`);
    } catch (error) {
      opening.then((late) => late.close()).catch(() => {});
      throw error;
    }
  }

  /** Waits for the session to end, sending a heartbeat each interval; a heartbeat that is not answered ends it. */
  async #watch(session: ListenSession, end: Deferred<SessionEnd>): Promise<SessionEnd> {
    const beat = new Wakeup();
    let outcome: SessionEnd | null = null;
    // The end wakes the heartbeat's sleep, so no timer outlives the session.
    void end.promise.then((o) => {
      outcome = o;
      beat.wake();
    });
    for (;;) {
      await beat.sleep(this.#heartbeatMs());
      if (outcome) return outcome;
      const [channel] = this.#listening;
      try {
        await this.#run('a heartbeat', () => session.heartbeat(channel));
      } catch (error) {
        return { kind: 'dropped', error };
      }
    }
  }

  async #supervise(): Promise<void> {
    let attempt = 0;
    while (this.#subscribers.size > 0) {
      const end = deferred<SessionEnd>();
      this.#sessionEnd = end;
      let session: ListenSession | null = null;
      try {
        session = await this.#open(end);
        this.#commands = Promise.resolve();
        if (this.#subscribers.size > 0) {
          this.#session = session;
          // Channels subscribed while we were connecting are picked up by the second pass.
          while ([...this.#subscribers.keys()].some((c) => !this.#listening.has(c))) {
            for (const channel of [...this.#subscribers.keys()]) {
              if (!this.#listening.has(channel)) await this.#listenOrThrow(session, channel);
            }
          }
          attempt = 0;
          const outcome = await this.#watch(session, end);
          if (outcome.kind === 'dropped') this.#reportDisconnect(outcome.error);
        }
      } catch (error) {
        this.#reportDisconnect(error);
      } finally {
        this.#session = null;
        this.#sessionEnd = null;
        this.#listening.clear();
        // Not awaited: closing waits for the server, which nobody needs (and a partition delays);
        // and put off a moment when the last subscriber left, so a backend exiting on the server
        // does not compete with the successor's election right at a handoff.
        if (session) {
          const open = session;
          setTimeout(() => void open.close().catch(() => {}), this.#subscribers.size === 0 ? CLOSE_DELAY_MS : 0);
        }
      }
      if (this.#subscribers.size === 0) break;
      this.#backoff.clear();
      await this.#backoff.sleep(backoffDelay(attempt++, RECONNECT_BACKOFF));
    }
    this.#supervisor = null;
  }

  async #listenOrThrow(session: ListenSession, channel: string): Promise<void> {
    await this.#run(`LISTEN ${channel}`, () => session.listen(channel));
    if (!this.#subscribers.has(channel)) {
      // Its last subscriber left while the LISTEN was on its way: nothing here wants it now.
      this.#run(`UNLISTEN ${channel}`, () => session.unlisten(channel)).catch(() => {});
      return;
    }
    this.#listening.add(channel);
    for (const subscriber of this.#subscribers.get(channel) ?? []) safely(() => subscriber.listening());
  }

  /** LISTEN on a live session; a failure drops the session so the supervisor reconnects. */
  async #listenOn(session: ListenSession, channel: string): Promise<void> {
    try {
      await this.#listenOrThrow(session, channel);
    } catch (error) {
      this.#sessionEnd?.resolve({ kind: 'dropped', error });
    }
  }

  /**
   * A command's answer, within `bound` of the last sign of life. The answer comes after every
   * notification already on the way: while they keep arriving (a flood, forged ones included)
   * the connection is alive and the answer is only queued behind them, so each window in which
   * one arrived earns another. A connection that delivers nothing and answers nothing ends.
   */
  async #answered(work: Promise<void>, bound: number, what: string): Promise<void> {
    work.catch(() => {});
    for (;;) {
      const since = performance.now();
      try {
        return await withDeadline(work, bound, () => `LISTEN connection did not answer ${what} within ${bound} ms`);
      } catch (error) {
        if (!(error instanceof DeadlineExceededError) || this.#heardAt < since) throw error;
      }
    }
  }

  #dispatch(channel: string, payload: string): void {
    this.#heardAt = performance.now();
    for (const subscriber of this.#subscribers.get(channel) ?? []) safely(() => subscriber.notification(payload));
  }

  #reportDisconnect(error: unknown): void {
    for (const set of this.#subscribers.values()) {
      for (const subscriber of set) safely(() => subscriber.disconnected(error));
    }
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // Subscribers catch their own errors; this guard only keeps one from breaking the others.
  }
}

const notifiers = new WeakMap<object, Notifier>();

/** The process-wide notifier of one driver client, created on first use. */
function notifierFor(client: object, driver: ListenDriver): Notifier {
  let notifier = notifiers.get(client);
  if (!notifier) {
    const created = new Notifier(driver, () => {
      if (notifiers.get(client) === created) notifiers.delete(client);
    });
    notifiers.set(client, created);
    notifier = created;
  }
  return notifier;
}

/**
 * Subscribes to `channel` on the process-wide LISTEN connection of `db`'s client (or of
 * `listen.url`). Returns the unsubscribe function, or null when this driver cannot LISTEN.
 */
export function subscribeChannel(
  db: LeaderDatabase,
  listen: true | { readonly url: string },
  channel: string,
  subscriber: ChannelSubscriber,
): (() => Promise<void>) | null {
  const found = listen === true ? detectDriver(db) : listenDriverForUrl(listen.url);
  const driver = 'driver' in found ? found.driver : found.listen;
  if (!driver || !found.client) return null;
  return notifierFor(found.client, driver).subscribe(channel, subscriber);
}
