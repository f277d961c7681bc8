/**
 * One LISTEN connection per database client, shared by every elector and watcher of the
 * process, kept alive by a supervisor: when the connection drops it reconnects with capped,
 * jittered backoff, LISTENs again on every channel and tells each subscriber, which then
 * re-checks the database (notifications sent while disconnected are lost for good).
 *
 * Drivers only open and close a dedicated connection (`ListenDriver`); everything else lives
 * here once, for all drivers.
 */

/** One dedicated connection, opened by a driver adapter. */
export interface ListenSession {
  listen(channel: string): Promise<void>;
  unlisten(channel: string): Promise<void>;
  close(): Promise<void>;
}

export interface ListenEvents {
  notification(channel: string, payload: string): void;
  /** The connection dropped (not called after `close()`). */
  closed(error?: unknown): void;
}

/** What a driver adapter provides: a way to open one dedicated LISTEN connection. */
export interface ListenDriver {
  /** Name for diagnostics, e.g. `postgres.js`. */
  readonly name: string;
  open(events: ListenEvents): Promise<ListenSession>;
}

export interface ChannelSubscriber {
  notification(payload: string): void;
  /** LISTEN is (re-)established on a fresh connection: re-check the database now. */
  listening(): void;
  /** The LISTEN connection failed or dropped; the notifier is reconnecting. */
  disconnected(error: unknown): void;
}

/** Reconnect backoff: 100 ms doubling to 5 s, with full jitter so a fleet does not reconnect in step. */
export const LISTEN_BACKOFF = Object.freeze({ initialMs: 100, maxMs: 5_000 });

export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

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
  #backoffTimer: { timer: NodeJS.Timeout; wake: () => void } | null = null;

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

  async #unsubscribe(channel: string, subscriber: ChannelSubscriber): Promise<void> {
    const set = this.#subscribers.get(channel);
    set?.delete(subscriber);
    if (set && set.size === 0) {
      this.#subscribers.delete(channel);
      const session = this.#session;
      if (session && this.#listening.delete(channel)) await session.unlisten(channel).catch(() => {});
    }
    if (this.#subscribers.size === 0) {
      this.#onEmpty();
      this.#sessionEnd?.resolve({ kind: 'shutdown' });
      this.#backoffTimer?.wake();
      await this.#supervisor;
    }
  }

  async #supervise(): Promise<void> {
    let attempt = 0;
    while (this.#subscribers.size > 0) {
      const end = deferred<SessionEnd>();
      this.#sessionEnd = end;
      let session: ListenSession | null = null;
      try {
        session = await this.#driver.open({
          notification: (channel, payload) => this.#dispatch(channel, payload),
          closed: (error) => end.resolve({ kind: 'dropped', error: error ?? new Error('LISTEN connection closed') }),
        });
        if (this.#subscribers.size > 0) {
          this.#session = session;
          // Channels subscribed while we were connecting are picked up by the second pass.
          while ([...this.#subscribers.keys()].some((c) => !this.#listening.has(c))) {
            for (const channel of [...this.#subscribers.keys()]) {
              if (!this.#listening.has(channel)) await this.#listenOrThrow(session, channel);
            }
          }
          attempt = 0;
          const outcome = await end.promise;
          if (outcome.kind === 'dropped') this.#reportDisconnect(outcome.error);
        }
      } catch (error) {
        this.#reportDisconnect(error);
      } finally {
        this.#session = null;
        this.#sessionEnd = null;
        this.#listening.clear();
        if (session) await session.close().catch(() => {});
      }
      if (this.#subscribers.size === 0) break;
      await this.#sleep(backoffDelay(attempt++, LISTEN_BACKOFF.initialMs, LISTEN_BACKOFF.maxMs));
    }
    this.#supervisor = null;
  }

  async #listenOrThrow(session: ListenSession, channel: string): Promise<void> {
    await session.listen(channel);
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

  #dispatch(channel: string, payload: string): void {
    for (const subscriber of this.#subscribers.get(channel) ?? []) safely(() => subscriber.notification(payload));
  }

  #reportDisconnect(error: unknown): void {
    for (const set of this.#subscribers.values()) {
      for (const subscriber of set) safely(() => subscriber.disconnected(error));
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#backoffTimer = null;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#backoffTimer = { timer, wake };
    });
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

/** The process-wide notifier of one database client, created on first use. */
export function notifierFor(client: object, driver: ListenDriver): Notifier {
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
