/**
 * The elector: one candidate in one election (a `name` in the lease table).
 *
 * # States
 *
 *   idle ──start()──▶ follower ◀──────────────┐
 *                      │  elect won           │ renewal denied / term replaced /
 *                      ▼                      │ trust expired / resign()
 *                    leader ──────────────────┘
 *   any ──stop()──▶ stopping ──▶ stopped
 *
 * Exactly one loop (`#run`) talks to the database, so there is never more than one
 * statement of this elector in flight and every transition happens in one place.
 *
 * # The trust window (safety rule 2)
 *
 * The database decides who leads: a lease is a row whose `expires_at` Postgres sets from its
 * own `now()`. The leader never reads that timestamp against its own clock. Instead, when an
 * elect or renew attempt *starts* it notes the monotonic time, and if the attempt succeeds it
 * trusts its leadership until that start + `ttl` − `safetyMargin`. The database cannot have
 * set `expires_at` before the attempt started, so the local deadline always falls before the
 * lease can expire, whatever the clocks say (clock *rate* skew beyond the margin is the limit).
 * `isLeader` compares the monotonic clock with that deadline at every read: a process resumed
 * from a long pause reads `false` before any of its timers has had a chance to run.
 *
 * Renewals run against that same deadline: a bounded wait for a pool connection and a
 * server-side `statement_timeout`/`lock_timeout` just inside it, so a saturated pool or a locked
 * row ends in a clean step-down rather than a late answer. An answer that does arrive after the
 * deadline (or a win after an election's own window) is never believed: the term is released.
 *
 * # Terms (safety rules 3 and 4)
 *
 * Each leadership has a `term` drawn from an identity sequence: strictly larger for every new
 * leadership, across resignations, deleted rows and restarts. Renew and resign name the exact
 * term, so a deposed leader can neither extend nor delete its successor's lease, and `term`
 * doubles as a fencing token for the resources the leader writes to.
 *
 * # Notifications (safety rule 5)
 *
 * Resignation deletes the row and NOTIFYs in one statement; followers LISTENing on the channel
 * wake and elect at once instead of waiting out the TTL. A notification only ever wakes the
 * loop (wakeups coalesce) or asks the leader to resign; the database still decides, so a lost,
 * duplicated or forged notification can delay failover, never create a second leader.
 */

import { driverAdapterFor, listenDriverFor, listenDriverForUrl } from './driver.js';
import { DrizzleLeaderError, ElectorError, ElectorStoppedError, LeaseTableMissingError } from './errors.js';
import type { ElectorHooks, ElectorOperation } from './hooks.js';
import { parseNotification } from './notification.js';
import { backoffDelay, notifierFor } from './notifier.js';
import { type ElectorOptions, type ResolvedElectorOptions, resolveElectorOptions } from './options.js';
import type { LeaderDatabase, LeaseRecord } from './queries.js';
import * as queries from './queries.js';
import { Subscribers } from './subscribers.js';

/** This elector's current leadership. */
export interface Lease {
  readonly name: string;
  readonly term: number;
  readonly leaderId: string;
  /** When the database elected this term (database clock). */
  readonly electedAt: Date;
  /** When the lease expires by the database clock at the last successful renewal. Informational: trust is decided locally. */
  readonly expiresAt: Date;
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

/** Runs while this elector leads; `signal` aborts the moment leadership ends, for any reason. */
export type LeaderTask = (signal: AbortSignal, lease: Lease) => void | Promise<void>;

type State =
  | { readonly kind: 'idle' }
  | { readonly kind: 'follower' }
  | {
      readonly kind: 'leader';
      readonly lease: Lease;
      /** Monotonic ms (performance.now()) after which this leadership is no longer trusted. */
      readonly trustUntil: number;
      /** Monotonic ms at which the last successful attempt started: renewals are spaced from here. */
      readonly attemptStartedAt: number;
      /** Monotonic ms at which this leadership began. */
      readonly gainedAt: number;
      readonly controller: AbortController;
    }
  | { readonly kind: 'stopping' }
  | { readonly kind: 'stopped' };

type LeaderState = Extract<State, { kind: 'leader' }>;

/** Running counts of what this elector did; `elector.stats` returns a copy. */
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
 * A wake from a notification is honoured at most this often (ms): a flood of forged or
 * duplicated notifications cannot turn into a flood of election statements.
 */
const MIN_NOTIFIED_ATTEMPT_GAP_MS = 50;

/** Back-off after a failed statement: 100 ms doubling up to 2 s (capped further by the trust window). */
const ERROR_BACKOFF = Object.freeze({ initialMs: 100, maxMs: 2_000 });

const monotonicNow = () => performance.now();

/** Database objects already warned about running poll-only. */
const warnedPollOnly = new WeakSet<object>();

export class Elector {
  readonly #db: LeaderDatabase;
  readonly #options: ResolvedElectorOptions;
  readonly #subscribers: Subscribers<LeadershipEvent>;
  /** Called synchronously at each transition, before listeners: leader tasks must start with the leadership's own signal. */
  readonly #transitionHooks = new Set<(event: LeadershipEvent) => void>();
  #listenReady: Promise<void> | null = null;
  #state: State = { kind: 'idle' };
  #started: Promise<void> | null = null;
  #stopped: Promise<void> | null = null;
  #loop: Promise<void> | null = null;
  /** A term this process may still hold in the database after stepping down locally; released at the next chance. */
  #unreleasedTerm: number | null = null;
  #resignRequested = false;
  #holdOffUntil = 0;
  #wake: (() => void) | null = null;
  #wakePending = false;
  #trustTimer: NodeJS.Timeout | null = null;
  #unlisten: (() => Promise<void>) | null = null;
  #consecutiveErrors = 0;
  /** Renew with a bounded connection wait and server-side statement/lock timeouts (see queries.renewWithin). */
  readonly #withDeadlines: boolean;
  #lastNotifiedWakeAt = Number.NEGATIVE_INFINITY;
  #deferredWake: NodeJS.Timeout | null = null;
  /** When a `resigned` notification last woke this follower (monotonic ms), for the handoff latency hook. */
  #notifiedAt: number | null = null;
  readonly #stats: ElectorStats = {
    elections: { won: 0, denied: 0, failed: 0 },
    renewals: { ok: 0, denied: 0, failed: 0 },
    leadershipsLost: 0,
    notifications: { received: 0, ignored: 0 },
  };

  constructor(db: LeaderDatabase, options: ElectorOptions = {}) {
    this.#options = resolveElectorOptions(options);
    this.#db = db;
    // Deadlines need transactions; drivers we cannot identify (HTTP) may not offer them.
    this.#withDeadlines = driverAdapterFor(db) !== null;
    this.#subscribers = new Subscribers((error) =>
      this.#options.logger.error({ err: error, name: this.#options.name }, 'drizzle-leader: a leadership listener threw'),
    );
  }

  /** The options in force, defaults merged. */
  get options(): ResolvedElectorOptions {
    return this.#options;
  }

  /** This candidate's id (stored as `leader_id` while it leads). */
  get id(): string {
    return this.#options.id;
  }

  /**
   * Whether this elector leads right now. Re-checks the trust deadline on the monotonic clock at
   * every read, so it turns false the moment trust runs out, even if no timer has run since.
   */
  get isLeader(): boolean {
    return this.#trustedLeadership() !== null;
  }

  /** The current leadership, or null. Same trust check as `isLeader`. */
  get lease(): Lease | null {
    return this.#trustedLeadership()?.lease ?? null;
  }

  /** A snapshot of this elector's counters. */
  get stats(): ElectorStats {
    return structuredClone(this.#stats);
  }

  /** `'idle' | 'follower' | 'leader' | 'stopping' | 'stopped'` (after the same trust check as `isLeader`). */
  get state(): State['kind'] {
    this.#trustedLeadership();
    return this.#state.kind;
  }

  /**
   * Starts campaigning. Resolves after the first election attempt, so `isLeader` is meaningful
   * right after `await start()`. Rejects with `LeaseTableMissingError` (and stops) when the
   * lease table does not exist; other errors (server down) are retried in the background.
   */
  start(): Promise<void> {
    if (this.#stopped) return Promise.reject(new ElectorStoppedError());
    if (!this.#started) this.#started = this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    this.#state = { kind: 'follower' };
    this.#listenReady = this.#startListening();
    await Promise.all([this.#listenReady, this.#warmUp()]);
    let firstAttempt!: (error: unknown) => void;
    const firstAttemptDone = new Promise<unknown>((resolve) => {
      firstAttempt = resolve;
    });
    this.#loop = this.#run(firstAttempt);
    const error = await firstAttemptDone;
    if (error instanceof LeaseTableMissingError) {
      await this.stop();
      throw error;
    }
  }

  /**
   * Stops campaigning: if leading, steps down locally at once, then deletes its term's row and
   * NOTIFYs so a follower takes over in milliseconds; closes its share of the LISTEN connection.
   * Idempotent and safe to call concurrently; resolves when everything is released.
   */
  stop(): Promise<void> {
    if (!this.#stopped) this.#stopped = this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    const wasLeader = this.#state.kind === 'leader';
    if (wasLeader) this.#stepDown('stopped');
    this.#state = { kind: 'stopping' };
    if (this.#deferredWake) clearTimeout(this.#deferredWake);
    this.#wakeUp();
    // A statement blocked on a row someone else holds locked must not hold stop() hostage: wait
    // for the loop at most one ttl (a late win is then simply left to expire).
    await settledWithin(this.#loop, this.#options.ttl);
    await this.#releaseUnreleasedTerm();
    await this.#listenReady;
    await this.#unlisten?.();
    this.#unlisten = null;
    this.#state = { kind: 'stopped' };
    // Let listeners hear `lost: stopped` before stop() resolves, but never wait on a stuck one.
    await settledWithin(this.#subscribers.drained(), 1_000);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * Steps down now and stays a candidate: the row of the current term is deleted with a NOTIFY,
   * so another candidate takes over; this one waits a moment before campaigning again.
   * Resolves true if this elector was leading.
   */
  async resign(): Promise<boolean> {
    if (this.#trustedLeadership() === null) return false;
    this.#stepDown('resigned');
    this.#resignRequested = false;
    this.#holdOffUntil = monotonicNow() + this.#resignHoldOffMs();
    await this.#releaseUnreleasedTerm();
    this.#wakeUp();
    return true;
  }

  /** Receives every transition, in order. A throwing or slow listener never blocks the elector. Returns an unsubscribe function. */
  subscribe(listener: LeadershipListener): () => void {
    return this.#subscribers.add(listener);
  }

  /**
   * Calls `task(signal, lease)` each time leadership is gained; `signal` aborts the moment that
   * leadership ends (lost renewal, trust deadline, replaced term, resign, stop). Like client-go's
   * OnStartedLeading(ctx). Returns a function that stops further runs and aborts the current one.
   */
  runWhileLeader(task: LeaderTask): () => void {
    const owner = new AbortController();
    const launch = (lease: Lease, leadership: AbortSignal) => {
      if (owner.signal.aborted || leadership.aborted) return;
      const signal = AbortSignal.any([leadership, owner.signal]);
      Promise.resolve()
        .then(() => task(signal, lease))
        .catch((error: unknown) => {
          if (!signal.aborted) {
            this.#options.logger.error({ err: error, name: this.#options.name, term: lease.term }, 'drizzle-leader: leader task failed');
          }
        });
    };
    const unsubscribe = this.#onTransition((event) => {
      if (event.type !== 'gained') return;
      const state = this.#state;
      if (state.kind === 'leader' && state.lease.term === event.term) launch(state.lease, state.controller.signal);
    });
    const current = this.#trustedLeadership();
    if (current) launch(current.lease, current.controller.signal);
    return () => {
      owner.abort(new DrizzleLeaderError('runWhileLeader was cancelled'));
      unsubscribe();
    };
  }

  /** Resolves with the lease once this elector leads (at once if it already does). */
  waitForLeadership(options: { signal?: AbortSignal } = {}): Promise<Lease> {
    const current = this.#trustedLeadership();
    if (current) return Promise.resolve(current.lease);
    return new Promise((resolve, reject) => {
      const { signal } = options;
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        unsubscribe();
        reject(signal?.reason);
      };
      const unsubscribe = this.#onTransition((event) => {
        if (event.type !== 'gained') return;
        unsubscribe();
        signal?.removeEventListener('abort', onAbort);
        resolve(event.lease);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  // ---------------------------------------------------------------------------------------
  // Leadership state

  #onTransition(hook: (event: LeadershipEvent) => void): () => void {
    const wrapped = (event: LeadershipEvent) => hook(event);
    this.#transitionHooks.add(wrapped);
    return () => {
      this.#transitionHooks.delete(wrapped);
    };
  }

  #emit(event: LeadershipEvent): void {
    for (const hook of [...this.#transitionHooks]) {
      try {
        hook(event);
      } catch (error) {
        this.#options.logger.error({ err: error, name: this.#options.name }, 'drizzle-leader: a transition hook threw');
      }
    }
    this.#subscribers.emit(event);
  }

  /** The leader state if still trusted; steps down (synchronously) if the deadline has passed. */
  #trustedLeadership(): LeaderState | null {
    const state = this.#state;
    if (state.kind !== 'leader') return null;
    if (monotonicNow() >= state.trustUntil) {
      this.#stepDown('trust-expired');
      return null;
    }
    return state;
  }

  #becomeLeader(record: LeaseRecord, attemptStartedAt: number, notifiedAt: number | null = null): void {
    const trustUntil = attemptStartedAt + this.#options.ttl - this.#options.safetyMargin;
    const lease: Lease = Object.freeze({
      name: record.name,
      term: record.term,
      leaderId: record.leaderId,
      electedAt: record.electedAt,
      expiresAt: record.expiresAt,
    });
    this.#unreleasedTerm = record.term;
    if (monotonicNow() >= trustUntil) {
      // The winning statement took longer than the trust window: the win is unusable.
      this.#options.logger.warn(
        { name: lease.name, term: lease.term },
        'drizzle-leader: election answered after the trust window; not taking it',
      );
      return;
    }
    const gainedAt = monotonicNow();
    this.#state = { kind: 'leader', lease, trustUntil, attemptStartedAt, gainedAt, controller: new AbortController() };
    this.#consecutiveErrors = 0;
    this.#armTrustTimer(trustUntil);
    this.#options.logger.info({ name: lease.name, term: lease.term, leaderId: lease.leaderId }, 'drizzle-leader: leadership gained');
    this.#hook('gained', (h) => h.gained?.(lease.term, notifiedAt === null ? {} : { sinceNotificationMs: gainedAt - notifiedAt }));
    this.#emit({ type: 'gained', term: lease.term, lease });
  }

  #extendTrust(state: LeaderState, record: LeaseRecord, attemptStartedAt: number): void {
    const trustUntil = attemptStartedAt + this.#options.ttl - this.#options.safetyMargin;
    const lease = Object.freeze({ ...state.lease, expiresAt: record.expiresAt });
    this.#state = { ...state, lease, trustUntil, attemptStartedAt };
    this.#consecutiveErrors = 0;
    this.#armTrustTimer(trustUntil);
  }

  /** Ends the current leadership locally: the abort signal fires and listeners hear `lost` before anything else happens. */
  #stepDown(reason: LossReason): void {
    const state = this.#state;
    if (state.kind !== 'leader') return;
    this.#state = { kind: 'follower' };
    this.#stats.leadershipsLost++;
    this.#clearTrustTimer();
    this.#options.logger[reason === 'resigned' || reason === 'stopped' ? 'info' : 'warn'](
      { name: state.lease.name, term: state.lease.term, reason },
      'drizzle-leader: leadership lost',
    );
    state.controller.abort(new DrizzleLeaderError(`leadership of term ${state.lease.term} ended: ${reason}`));
    this.#hook('lost', (h) => h.lost?.(state.lease.term, reason, monotonicNow() - state.gainedAt));
    this.#emit({ type: 'lost', term: state.lease.term, reason });
    // A renewal can wake us after trust expired; the loop releases the term when it can.
    if (reason === 'renewal-denied' || reason === 'term-replaced') this.#unreleasedTerm = null;
    this.#wakeUp();
  }

  #armTrustTimer(trustUntil: number): void {
    this.#clearTrustTimer();
    this.#trustTimer = setTimeout(() => this.#trustedLeadership(), Math.max(0, trustUntil - monotonicNow()) + 1);
    this.#trustTimer.unref?.();
  }

  #clearTrustTimer(): void {
    if (this.#trustTimer) clearTimeout(this.#trustTimer);
    this.#trustTimer = null;
  }

  #resignHoldOffMs(): number {
    return Math.min(this.#options.renewInterval, 1_000);
  }

  // ---------------------------------------------------------------------------------------
  // The loop: the only place that talks to the database

  async #run(firstAttemptDone: (error: unknown) => void): Promise<void> {
    let first = true;
    // start() resolves as soon as the first attempt has an outcome, not after the sleep that follows.
    const attempted = (error: unknown) => {
      if (!first) return;
      first = false;
      firstAttemptDone(error);
    };
    while (this.#isRunning()) {
      const state = this.#trustedLeadership() ?? this.#state;
      if (state.kind === 'leader') {
        await this.#leaderTurn(state);
      } else {
        const error = await this.#followerTurn(attempted);
        if (error instanceof LeaseTableMissingError) return;
      }
    }
    attempted(undefined);
  }

  #isRunning(): boolean {
    const kind = this.#state.kind;
    return kind === 'follower' || kind === 'leader';
  }

  /** One election attempt, then a sleep until the holder's lease can have expired or a notification wakes us. */
  async #followerTurn(attempted: (error: unknown) => void): Promise<unknown> {
    await this.#releaseUnreleasedTerm();
    // After resigning, give the others a head start; notifications cannot cut this short, stop() can.
    for (let left = this.#holdOffUntil - monotonicNow(); left > 0 && this.#isRunning(); left = this.#holdOffUntil - monotonicNow()) {
      await this.#sleep(left);
    }
    if (!this.#isRunning()) return undefined;
    const { name, id, ttl, channel, table } = this.#options;
    const startedAt = monotonicNow();
    const notifiedAt = this.#notifiedAt;
    this.#notifiedAt = null;
    let result: queries.ElectResult;
    try {
      result = await queries.elect(this.#db, table, { name, leaderId: id, ttlMs: ttl, channel });
    } catch (error) {
      this.#stats.elections.failed++;
      this.#hook('election', (h) => h.election?.('failed', monotonicNow() - startedAt));
      const failure = this.#classify(error, 'election');
      attempted(failure);
      if (failure instanceof LeaseTableMissingError) return failure;
      await this.#sleep(this.#errorBackoff());
      return failure;
    }
    this.#consecutiveErrors = 0;
    this.#stats.elections[result.won ? 'won' : 'denied']++;
    this.#hook('election', (h) => h.election?.(result.won ? 'won' : 'denied', monotonicNow() - startedAt));
    if (result.won) {
      if (!this.#isRunning()) {
        // stop() arrived while the statement was in flight: hand the lease straight back.
        this.#unreleasedTerm = result.lease.term;
        return undefined;
      }
      this.#becomeLeader(result.lease, startedAt, notifiedAt);
      attempted(undefined);
      return undefined;
    }
    attempted(undefined);
    await this.#sleep(this.#followerSleepMs(result.holder));
    return undefined;
  }

  /**
   * How long a denied follower sleeps: until the holder's lease can have expired (by the server's
   * count) plus a little jitter so followers do not stampede, capped at one TTL so a lost
   * notification costs at most one lease period. A notification wakes it earlier.
   */
  #followerSleepMs(holder: LeaseRecord | null): number {
    const { ttl } = this.#options;
    const jitter = Math.random() * Math.min(50, ttl / 20);
    if (!holder) return Math.min(ttl, 100) + jitter;
    return Math.min(Math.max(holder.remainingMs, 0) + jitter, ttl);
  }

  /** Renews every `renewInterval` from the start of the last successful attempt; backs off on errors. */
  async #leaderTurn(state: LeaderState): Promise<void> {
    const { renewInterval, ttl, name, id, table } = this.#options;
    const dueAt = this.#consecutiveErrors === 0 ? state.attemptStartedAt + renewInterval : monotonicNow() + this.#errorBackoff();
    await this.#sleep(Math.min(dueAt, state.trustUntil) - monotonicNow());
    if (this.#resignRequested) {
      this.#resignRequested = false;
      if (this.#trustedLeadership() === state) await this.resign();
      return;
    }
    if (this.#trustedLeadership() !== state) return;
    const startedAt = monotonicNow();
    const input = { name, leaderId: id, term: state.lease.term, ttlMs: ttl };
    let record: LeaseRecord | null;
    try {
      if (this.#withDeadlines) {
        const result = await queries.renewWithin(this.#db, table, input, state.trustUntil, monotonicNow);
        record = result.record;
        this.#warnIfStarved(result.waitedMs, state);
      } else {
        record = await queries.renew(this.#db, table, input);
      }
    } catch (error) {
      if (error instanceof queries.DeadlineExceeded && error.waitedForConnectionMs !== undefined) {
        this.#warnIfStarved(error.waitedForConnectionMs, state);
      }
      this.#stats.renewals.failed++;
      this.#hook('renewal', (h) => h.renewal?.('failed', monotonicNow() - startedAt));
      this.#classify(error, 'renewal');
      return;
    }
    this.#stats.renewals[record ? 'ok' : 'denied']++;
    this.#hook('renewal', (h) => h.renewal?.(record ? 'ok' : 'denied', monotonicNow() - startedAt));
    const current = this.#trustedLeadership();
    if (current !== state) {
      // We stepped down (trust expired, stop) while the renewal was in flight. If it extended
      // our lease, or inserted a fresh one, hand it back so followers need not wait it out.
      if (record) this.#unreleasedTerm = record.term;
      await this.#releaseUnreleasedTerm();
      return;
    }
    if (!record) {
      this.#unreleasedTerm = null;
      this.#stepDown('renewal-denied');
      return;
    }
    if (record.term !== state.lease.term) {
      this.#stepDown('term-replaced');
      this.#becomeLeader(record, startedAt);
      return;
    }
    this.#extendTrust(state, record, startedAt);
  }

  /**
   * Runs the resignation statement once for term 0, which never exists (identity terms start at
   * 1): it deletes and announces nothing, but the server has parsed and planned the statement
   * before the moment it matters, the first handoff (about 1 ms on loopback). Errors are left to
   * the first election, which reports them properly.
   */
  async #warmUp(): Promise<void> {
    const { name, id, channel, table } = this.#options;
    await queries.resign(this.#db, table, { name, leaderId: id, term: 0, channel }).catch(() => {});
  }

  /** Says so when renewals queue for a connection long enough to threaten the trust window. */
  #warnIfStarved(waitedMs: number, state: LeaderState): void {
    const window = this.#options.ttl - this.#options.safetyMargin;
    if (waitedMs < Math.max(100, window / 4)) return;
    this.#options.logger.warn(
      { name: this.#options.name, term: state.lease.term, waitedMs: Math.round(waitedMs) },
      `drizzle-leader: renewal waited ${Math.round(waitedMs)} ms for a connection (trust window ${window} ms); ` +
        'the pool is saturated: give the elector its own small pool (e.g. a separate db with max: 2)',
    );
  }

  /** Deletes a term this process may still hold (after a local step-down); best-effort, term-scoped. */
  async #releaseUnreleasedTerm(): Promise<void> {
    const term = this.#unreleasedTerm;
    if (term === null || this.#state.kind === 'leader') return;
    const { name, id, channel, table } = this.#options;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Bounded: a row locked by someone else must not hold stop() hostage; the lease expires anyway.
      const bound = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`resignation did not complete within ${this.#options.ttl} ms`)), this.#options.ttl);
      });
      await Promise.race([queries.resign(this.#db, table, { name, leaderId: id, term, channel }), bound]);
      if (this.#unreleasedTerm === term) this.#unreleasedTerm = null;
    } catch (error) {
      // The lease will expire on its own; releasing it only makes failover faster.
      const handled = new ElectorError('resignation', error);
      this.#options.logger.warn({ err: handled, name, term }, 'drizzle-leader: could not release the lease; it will expire on its own');
      this.#hook('error', (h) => h.error?.(handled, 'resignation'));
      if (this.#state.kind === 'stopping') this.#unreleasedTerm = null;
    } finally {
      clearTimeout(timer);
    }
  }

  #classify(error: unknown, what: Extract<ElectorOperation, 'election' | 'renewal'>): unknown {
    const { logger, name, table } = this.#options;
    this.#consecutiveErrors++;
    if (isUndefinedTable(error)) {
      const missing = new LeaseTableMissingError(tableLabel(table), error);
      logger.error({ err: missing, name }, `drizzle-leader: ${what} failed`);
      return missing;
    }
    const handled = new ElectorError(what, error);
    logger.warn({ err: handled, name }, `drizzle-leader: ${what} failed; retrying`);
    this.#hook('error', (h) => h.error?.(handled, what));
    return error;
  }

  /** Calls a metrics hook; a throwing hook is logged, never allowed to disturb the elector. */
  #hook(name: keyof ElectorHooks, call: (hooks: ElectorHooks) => void): void {
    try {
      call(this.#options.hooks);
    } catch (error) {
      this.#options.logger.error({ err: error, hook: name }, 'drizzle-leader: a metrics hook threw');
    }
  }

  #errorBackoff(): number {
    return backoffDelay(Math.max(0, this.#consecutiveErrors - 1), ERROR_BACKOFF.initialMs, ERROR_BACKOFF.maxMs);
  }

  /** Sleeps until `ms` pass or something wakes the loop. A wake that arrives while awake is kept (coalesced into one). */
  #sleep(ms: number): Promise<void> {
    if (this.#wakePending || !this.#isRunning()) {
      this.#wakePending = false;
      return Promise.resolve();
    }
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  /**
   * Wakes the follower at once for the first notification after a quiet spell; in a flood, at
   * most once per gap (the rest coalesce into one deferred wake). Regular polls do not count
   * against the gap, so a real resignation right after a poll is still acted on immediately.
   */
  #wakeForNotification(): void {
    const now = monotonicNow();
    this.#notifiedAt ??= now;
    if (this.#deferredWake) return;
    const wait = this.#lastNotifiedWakeAt + MIN_NOTIFIED_ATTEMPT_GAP_MS - now;
    if (wait <= 0) {
      this.#lastNotifiedWakeAt = now;
      this.#wakeUp();
      return;
    }
    this.#deferredWake = setTimeout(() => {
      this.#deferredWake = null;
      this.#lastNotifiedWakeAt = monotonicNow();
      if (this.#state.kind === 'follower') this.#wakeUp();
    }, wait);
  }

  #wakeUp(): void {
    if (this.#wake) this.#wake();
    else this.#wakePending = true;
  }

  // ---------------------------------------------------------------------------------------
  // Notifications: hints that wake the loop, nothing more

  async #startListening(): Promise<void> {
    const { listen, channel, logger, name } = this.#options;
    if (!listen) return;
    const found = typeof listen === 'object' ? listenDriverForUrl(listen.url) : listenDriverFor(this.#db);
    if (!found) {
      // Once per database object, not once per elector: one clear line.
      if (warnedPollOnly.has(this.#db)) return;
      warnedPollOnly.add(this.#db);
      logger.warn(
        { name },
        'drizzle-leader: this Drizzle driver cannot LISTEN; running poll-only (failover waits for the lease). Pass listen: false to silence this.',
      );
      return;
    }
    const notifier = notifierFor(found.client, found.driver);
    let firstListen!: () => void;
    const listening = new Promise<void>((resolve) => {
      firstListen = resolve;
    });
    this.#unlisten = notifier.subscribe(channel, {
      notification: (payload) => this.#onNotification(payload),
      listening: () => {
        firstListen();
        // Anything sent while we were not listening is lost: look at the database now.
        if (this.#state.kind === 'follower') this.#wakeUp();
      },
      disconnected: (error) => {
        firstListen();
        const handled = new ElectorError('listen', error);
        logger.warn({ err: handled, name, channel }, 'drizzle-leader: LISTEN connection lost; reconnecting (followers poll meanwhile)');
        this.#hook('error', (h) => h.error?.(handled, 'listen'));
      },
    });
    // Do not hold start() hostage to a LISTEN connection that is backing off: poll meanwhile.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([listening, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2_000)))]);
    clearTimeout(timer);
  }

  #onNotification(payload: string): void {
    const { logger, name, id } = this.#options;
    this.#stats.notifications.received++;
    const notification = parseNotification(payload);
    if (!notification || notification.name !== name) {
      this.#stats.notifications.ignored++;
      if (!notification) logger.debug({ name, payload: payload.slice(0, 200) }, 'drizzle-leader: ignored a malformed notification');
      return;
    }
    const state = this.#state;
    if (notification.action === 'resigned' && state.kind === 'follower' && notification.leaderId !== id) {
      this.#wakeForNotification();
    } else if (notification.action === 'request_resign' && state.kind === 'leader') {
      if (notification.term !== undefined && notification.term !== state.lease.term) return;
      logger.info({ name, term: state.lease.term }, 'drizzle-leader: resignation requested');
      this.#resignRequested = true;
      this.#wakeUp();
    }
  }
}

/** Creates an elector for one election name. Options are validated here; nothing touches the database until `start()`. */
export function createElector(db: LeaderDatabase, options: ElectorOptions = {}): Elector {
  return new Elector(db, options);
}

/** Resolves when `promise` settles or after `ms`, whichever is first; never rejects. */
async function settledWithin(promise: Promise<unknown> | null, ms: number): Promise<void> {
  if (!promise) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function isUndefinedTable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === '42P01') return true;
  }
  return false;
}

function tableLabel(table: import('./schema.js').LeaderTable): string {
  const schema = (table as unknown as Record<symbol, unknown>)[Symbol.for('drizzle:Schema')];
  const name = (table as unknown as Record<symbol, unknown>)[Symbol.for('drizzle:Name')];
  return schema ? `${String(schema)}.${String(name)}` : String(name);
}
