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
 * Every transition happens in this file. Exactly one loop (`#run`) talks to the lease table
 * through the `LeaseStore`, so there is never more than one election, renewal or resignation
 * of this elector in flight. The public calls only set intent and wake the loop: `resign()`
 * and `stop()` end the leadership locally at once (the task signal aborts, `isLeader` turns
 * false), then the loop sends the resignation and the call awaits its outcome.
 *
 * # The trust window (safety rule 2)
 *
 * The database decides who leads: a lease is a row whose `expires_at` Postgres sets from its
 * own `now()`. The leader never reads that timestamp against its own clock. Instead each
 * successful elect or renew earns a `TrustWindow` (trust.ts) that starts when the attempt
 * *started* and lasts `ttl` − `safetyMargin`, by whichever of the monotonic and wall clocks
 * says it ends first. `isLeader` checks it at every read: a process resumed from a long pause
 * or a suspend reads `false` before any of its timers has had a chance to run.
 *
 * Renewals run against that same window: a bounded wait for a pool connection and a
 * server-side `statement_timeout`/`lock_timeout` just inside it, so a saturated pool or a
 * locked row ends in a clean step-down rather than a late answer. An answer that arrives
 * after the window (or a win after an election's own window) is never believed: the term is
 * released.
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
 * loop (wakeups coalesce and are spaced) or asks the leader to resign; the database still
 * decides, so a lost, duplicated or forged notification can delay failover, never create a
 * second leader.
 */

import { detectDriver } from '../driver/detect.js';
import { DrizzleLeaderError, ElectorStoppedError, LeaseTableMissingError } from '../errors.js';
import { createLeaseStore, type LeaseStore } from '../lease/store.js';
import { subscribeChannel } from '../listen/notifier.js';
import { parseNotification } from '../listen/payload.js';
import { type ElectorOptions, type ResolvedElectorOptions, resolveElectorOptions, tableLabel } from '../options.js';
import type {
  ElectorStats,
  LeaderDatabase,
  LeaderInfo,
  LeadershipEvent,
  LeadershipListener,
  LeaderTask,
  Lease,
  LossReason,
} from '../types.js';
import { type Backoff, backoffDelay } from '../util/backoff.js';
import { errorCode } from '../util/cause.js';
import { type Instant, readClock } from '../util/clock.js';
import { settledWithin, withDeadline } from '../util/deadline.js';
import { deferred } from '../util/deferred.js';
import { Wakeup } from '../util/wakeup.js';
import { Instruments } from './instruments.js';
import { Subscribers } from './subscribers.js';
import { TrustWindow } from './trust.js';

type State =
  | { readonly kind: 'idle' }
  | { readonly kind: 'follower' }
  | {
      readonly kind: 'leader';
      readonly lease: Lease;
      readonly trust: TrustWindow;
      /** When this leadership began. */
      readonly gainedAt: Instant;
      readonly controller: AbortController;
    }
  | { readonly kind: 'stopping' }
  | { readonly kind: 'stopped' };

type LeaderState = Extract<State, { kind: 'leader' }>;

/**
 * A wake from a notification is honoured at most this often (ms): a flood of forged or
 * duplicated notifications cannot turn into a flood of election statements.
 */
const MIN_NOTIFIED_ATTEMPT_GAP_MS = 50;

/** Back-off after a failed statement: 100 ms doubling up to 2 s (capped further by the trust window). */
const ERROR_BACKOFF: Backoff = Object.freeze({ initialMs: 100, maxMs: 2_000 });

/** start() does not wait longer than this for the LISTEN connection: followers poll meanwhile. */
const LISTEN_READY_WAIT_MS = 2_000;

/** Seams for tests (see `dev/testing.ts`); not part of the public API. */
export interface ElectorInternals {
  /** Wraps the real lease store, e.g. to delay or fail one method. */
  readonly wrapStore?: (store: LeaseStore) => LeaseStore;
}

/** Database objects already warned about running poll-only: one line per database, not per elector. */
const warnedPollOnly = new WeakSet<object>();

export class Elector {
  readonly #db: LeaderDatabase;
  readonly #options: ResolvedElectorOptions;
  readonly #store: LeaseStore;
  readonly #instruments: Instruments;
  readonly #subscribers: Subscribers<LeadershipEvent>;
  /** Called synchronously at each transition, before listeners: leader tasks must start with the leadership's own signal. */
  readonly #transitionHooks = new Set<(event: LeadershipEvent) => void>();
  readonly #wakeup = new Wakeup();
  #state: State = { kind: 'idle' };
  #started: Promise<void> | null = null;
  #stopped: Promise<void> | null = null;
  #loop: Promise<void> | null = null;
  #listenReady: Promise<void> | null = null;
  #unlisten: (() => Promise<void>) | null = null;
  /** A term this process may still hold in the database after stepping down locally; the loop releases it. */
  #unreleasedTerm: number | null = null;
  /** Callers of resign() waiting for the loop to send the resignation. */
  #releaseWaiters: (() => void)[] = [];
  /** The term a `request_resign` notification asked this leader to give up. */
  #resignRequestedFor: number | null = null;
  /** Monotonic ms before which this candidate does not campaign (after resigning). */
  #holdOffUntil = 0;
  #trustTimer: NodeJS.Timeout | null = null;
  #consecutiveErrors = 0;
  #lastNotifiedWakeAt = Number.NEGATIVE_INFINITY;
  #deferredWake: NodeJS.Timeout | null = null;
  /** When a `resigned` notification last woke this follower (monotonic ms), for the handoff latency hook. */
  #notifiedAt: number | null = null;

  constructor(db: LeaderDatabase, options: ElectorOptions = {}, internals: ElectorInternals = {}) {
    this.#options = resolveElectorOptions(options);
    this.#db = db;
    const { table, channel, name, logger } = this.#options;
    const store = createLeaseStore(db, table, channel, detectDriver(db));
    this.#store = internals.wrapStore ? internals.wrapStore(store) : store;
    this.#instruments = new Instruments(this.#options);
    this.#subscribers = new Subscribers((error) => logger.error({ err: error, name }, 'drizzle-leader: a leadership listener threw'));
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
   * Whether this elector leads right now. Re-checks the trust window at every read, so it turns
   * false the moment trust runs out, even if no timer has run since.
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
    return this.#instruments.stats();
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
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    this.#state = { kind: 'follower' };
    this.#listenReady = this.#startListening();
    const firstAttempt = deferred<unknown>();
    this.#loop = this.#run(firstAttempt.resolve);
    const error = await firstAttempt.promise;
    if (error instanceof LeaseTableMissingError) {
      await this.stop();
      throw error;
    }
  }

  /**
   * Stops campaigning: if leading, steps down locally at once, then the loop deletes its term's
   * row and NOTIFYs so a follower takes over in milliseconds; closes its share of the LISTEN
   * connection. Idempotent and safe to call concurrently; resolves when everything is released.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#stepDown('stopped');
    this.#state = { kind: 'stopping' };
    if (this.#deferredWake) clearTimeout(this.#deferredWake);
    this.#wakeup.wake();
    // A statement blocked on a row someone else holds locked must not hold stop() hostage: wait
    // for the loop at most one ttl. The loop still releases a late win itself when it returns.
    await settledWithin(this.#loop, this.#options.ttl);
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
   * Resolves true if this elector was leading, once the resignation has been sent.
   */
  async resign(): Promise<boolean> {
    if (this.#trustedLeadership() === null) return false;
    const released = this.#nextRelease();
    this.#holdOffUntil = this.#now().monotonic + this.#resignHoldOffMs();
    this.#stepDown('resigned');
    await released;
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
  // Transitions: the only places the state changes

  #now(): Instant {
    return readClock(this.#options.clock);
  }

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

  /** The leader state if still trusted; steps down (synchronously) if the window has passed. */
  #trustedLeadership(): LeaderState | null {
    const state = this.#state;
    if (state.kind !== 'leader') return null;
    if (!state.trust.trusted(this.#now())) {
      this.#stepDown('trust-expired');
      return null;
    }
    return state;
  }

  /** follower → leader, after an election (or a renewal that inserted a fresh term) that started at `attemptStartedAt`. */
  #becomeLeader(record: LeaderInfo, attemptStartedAt: Instant, notifiedAt: number | null = null): void {
    const trust = TrustWindow.start(attemptStartedAt, this.#options);
    const lease: Lease = Object.freeze({
      name: record.name,
      term: record.term,
      leaderId: record.leaderId,
      electedAt: record.electedAt,
      expiresAt: record.expiresAt,
    });
    this.#unreleasedTerm = record.term;
    const now = this.#now();
    if (!trust.trusted(now)) {
      // The winning statement took longer than the trust window: the win is unusable.
      this.#options.logger.warn(
        { name: lease.name, term: lease.term },
        'drizzle-leader: election answered after the trust window; not taking it',
      );
      return;
    }
    this.#state = { kind: 'leader', lease, trust, gainedAt: now, controller: new AbortController() };
    this.#consecutiveErrors = 0;
    this.#resignRequestedFor = null;
    this.#armTrustTimer(trust.remaining(now));
    this.#instruments.gained(lease, notifiedAt === null ? null : now.monotonic - notifiedAt);
    this.#emit({ type: 'gained', term: lease.term, lease });
  }

  /** leader → leader: a renewal of the same term succeeded. */
  #extendTrust(state: LeaderState, record: LeaderInfo, attemptStartedAt: Instant): void {
    const trust = TrustWindow.start(attemptStartedAt, this.#options);
    const lease = Object.freeze({ ...state.lease, expiresAt: record.expiresAt });
    this.#state = { ...state, lease, trust };
    this.#consecutiveErrors = 0;
    this.#armTrustTimer(trust.remaining(this.#now()));
  }

  /** leader → follower, locally: the abort signal fires and listeners hear `lost` before anything else happens. */
  #stepDown(reason: LossReason): void {
    const state = this.#state;
    if (state.kind !== 'leader') return;
    this.#state = { kind: 'follower' };
    this.#resignRequestedFor = null;
    this.#clearTrustTimer();
    this.#instruments.lost(state.lease.term, reason, this.#now().monotonic - state.gainedAt.monotonic);
    state.controller.abort(new DrizzleLeaderError(`leadership of term ${state.lease.term} ended: ${reason}`));
    this.#emit({ type: 'lost', term: state.lease.term, reason });
    // Denied or replaced: the row is no longer ours to delete. Otherwise the loop releases it.
    if (reason === 'renewal-denied' || reason === 'term-replaced') this.#unreleasedTerm = null;
    this.#wakeup.wake();
  }

  #armTrustTimer(remainingMs: number): void {
    this.#clearTrustTimer();
    this.#trustTimer = setTimeout(() => this.#trustedLeadership(), Math.max(0, remainingMs) + 1);
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
  // The loop: the only place that talks to the lease table

  async #run(firstAttemptDone: (error: unknown) => void): Promise<void> {
    let first = true;
    // start() resolves as soon as the first attempt has an outcome, not after the sleep that follows.
    const attempted = (error: unknown) => {
      if (!first) return;
      first = false;
      firstAttemptDone(error);
    };
    try {
      await Promise.all([this.#listenReady, this.#warmUp()]);
      while (this.#isRunning()) {
        const state = this.#trustedLeadership() ?? this.#state;
        if (state.kind === 'leader') {
          await this.#leaderTurn(state);
        } else {
          const error = await this.#followerTurn(attempted);
          if (error instanceof LeaseTableMissingError) return;
        }
      }
    } finally {
      attempted(undefined);
      // stop() stepped down (or a late win arrived after it): the last statement of the loop.
      await this.#releaseUnreleasedTerm();
    }
  }

  #isRunning(): boolean {
    const kind = this.#state.kind;
    return kind === 'follower' || kind === 'leader';
  }

  #sleep(ms: number): Promise<void> {
    return this.#isRunning() ? this.#wakeup.sleep(ms) : Promise.resolve();
  }

  /** One election attempt, then a sleep until the holder's lease can have expired or a notification wakes us. */
  async #followerTurn(attempted: (error: unknown) => void): Promise<unknown> {
    await this.#releaseUnreleasedTerm();
    // After resigning, give the others a head start; notifications cannot cut this short, stop() can.
    for (
      let left = this.#holdOffUntil - this.#now().monotonic;
      left > 0 && this.#isRunning();
      left = this.#holdOffUntil - this.#now().monotonic
    ) {
      await this.#sleep(left);
    }
    if (!this.#isRunning()) return undefined;
    const { name, id, ttl } = this.#options;
    const startedAt = this.#now();
    const notifiedAt = this.#notifiedAt;
    this.#notifiedAt = null;
    let result: Awaited<ReturnType<LeaseStore['elect']>>;
    try {
      result = await this.#store.elect({ name, leaderId: id, ttlMs: ttl });
    } catch (error) {
      this.#instruments.election('failed', this.#now().monotonic - startedAt.monotonic);
      const failure = this.#failed(error, 'election');
      attempted(failure);
      if (failure instanceof LeaseTableMissingError) return failure;
      await this.#sleep(this.#errorBackoff());
      return failure;
    }
    this.#consecutiveErrors = 0;
    this.#instruments.election(result.won ? 'won' : 'denied', this.#now().monotonic - startedAt.monotonic);
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
  #followerSleepMs(holder: LeaderInfo | null): number {
    const { ttl } = this.#options;
    const jitter = Math.random() * Math.min(50, ttl / 20);
    if (!holder) return Math.min(ttl, 100) + jitter;
    return Math.min(Math.max(holder.remainingMs, 0) + jitter, ttl);
  }

  /** Renews every `renewInterval` from the start of the last successful attempt; backs off on errors; honours resign requests. */
  async #leaderTurn(state: LeaderState): Promise<void> {
    const { renewInterval, ttl, name, id } = this.#options;
    const now = this.#now();
    const due = this.#consecutiveErrors === 0 ? renewInterval - state.trust.elapsed(now) : this.#errorBackoff();
    await this.#sleep(Math.min(due, state.trust.remaining(now)));
    if (this.#trustedLeadership() !== state) return;
    if (this.#resignRequestedFor === state.lease.term) {
      this.#options.logger.info({ name, term: state.lease.term }, 'drizzle-leader: resignation requested');
      this.#holdOffUntil = this.#now().monotonic + this.#resignHoldOffMs();
      this.#stepDown('resigned');
      return;
    }
    const startedAt = this.#now();
    let record: LeaderInfo | null;
    try {
      const result = await this.#store.renew(
        { name, leaderId: id, term: state.lease.term, ttlMs: ttl },
        state.trust.deadline(this.#options.clock),
      );
      record = result.lease;
      this.#warnIfStarved(result.waitedMs, state);
    } catch (error) {
      const waited = (error as { waitedForConnectionMs?: number }).waitedForConnectionMs;
      if (waited !== undefined) this.#warnIfStarved(waited, state);
      this.#instruments.renewal('failed', this.#now().monotonic - startedAt.monotonic);
      this.#failed(error, 'renewal');
      return;
    }
    this.#instruments.renewal(record ? 'ok' : 'denied', this.#now().monotonic - startedAt.monotonic);
    if (this.#trustedLeadership() !== state) {
      // We stepped down (trust expired, stop, resign) while the renewal was in flight. If it
      // extended our lease, or inserted a fresh one, hand it back so followers need not wait it out.
      if (record) this.#unreleasedTerm = record.term;
      await this.#releaseUnreleasedTerm();
      return;
    }
    if (!record) {
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
    const { name, id } = this.#options;
    await this.#store.resign({ name, leaderId: id, term: 0 }).catch(() => {});
  }

  /** Says so when renewals queue for a connection long enough to threaten the trust window. */
  #warnIfStarved(waitedMs: number, state: LeaderState): void {
    const window = state.trust.lengthMs;
    if (waitedMs < Math.max(100, window / 4)) return;
    this.#options.logger.warn(
      { name: this.#options.name, term: state.lease.term, waitedMs: Math.round(waitedMs) },
      `drizzle-leader: renewal waited ${Math.round(waitedMs)} ms for a connection (trust window ${window} ms); ` +
        'the pool is saturated: give the elector its own small pool (e.g. a separate db with max: 2)',
    );
  }

  /** Resolves after the loop's next attempt to release a term (at once if the loop is not running). */
  #nextRelease(): Promise<void> {
    if (!this.#loop) return Promise.resolve();
    const released = deferred();
    this.#releaseWaiters.push(released.resolve);
    return released.promise;
  }

  /** Deletes a term this process may still hold (after a local step-down); best-effort, term-scoped, bounded. */
  async #releaseUnreleasedTerm(): Promise<void> {
    const term = this.#unreleasedTerm;
    if (term !== null && this.#state.kind !== 'leader') {
      const { name, id, ttl } = this.#options;
      try {
        // Bounded: a row locked by someone else must not hold stop() hostage; the lease expires anyway.
        await withDeadline(this.#store.resign({ name, leaderId: id, term }), ttl, () => `resignation did not complete within ${ttl} ms`);
        if (this.#unreleasedTerm === term) this.#unreleasedTerm = null;
      } catch (error) {
        // The lease will expire on its own; releasing it only makes failover faster.
        this.#instruments.handled('resignation', error, 'drizzle-leader: could not release the lease; it will expire on its own', { term });
        if (this.#state.kind === 'stopping') this.#unreleasedTerm = null;
      }
    }
    const waiters = this.#releaseWaiters;
    this.#releaseWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Counts a failed statement; returns `LeaseTableMissingError` when retrying cannot help, else the error. */
  #failed(error: unknown, operation: 'election' | 'renewal'): unknown {
    this.#consecutiveErrors++;
    if (errorCode(error) === '42P01') {
      const missing = new LeaseTableMissingError(tableLabel(this.#options.table), error);
      this.#options.logger.error({ err: missing, name: this.#options.name }, `drizzle-leader: ${operation} failed`);
      return missing;
    }
    this.#instruments.handled(operation, error, `drizzle-leader: ${operation} failed; retrying`);
    return error;
  }

  #errorBackoff(): number {
    return backoffDelay(Math.max(0, this.#consecutiveErrors - 1), ERROR_BACKOFF);
  }

  // ---------------------------------------------------------------------------------------
  // Notifications: hints that wake the loop, nothing more

  async #startListening(): Promise<void> {
    const { listen, channel, logger, name } = this.#options;
    if (!listen) return;
    const listening = deferred();
    this.#unlisten = subscribeChannel(this.#db, listen, channel, {
      notification: (payload) => this.#onNotification(payload),
      listening: () => {
        listening.resolve();
        // Anything sent while we were not listening is lost: look at the database now.
        if (this.#state.kind === 'follower') this.#wakeup.wake();
      },
      disconnected: (error) => {
        listening.resolve();
        this.#instruments.handled('listen', error, 'drizzle-leader: LISTEN connection lost; reconnecting (followers poll meanwhile)', {
          channel,
        });
      },
    });
    if (!this.#unlisten) {
      if (warnedPollOnly.has(this.#db)) return;
      warnedPollOnly.add(this.#db);
      logger.warn(
        { name },
        'drizzle-leader: this Drizzle driver cannot LISTEN; running poll-only (failover waits for the lease). Pass listen: false to silence this.',
      );
      return;
    }
    // Do not hold start() hostage to a LISTEN connection that is backing off: poll meanwhile.
    await settledWithin(listening.promise, LISTEN_READY_WAIT_MS);
  }

  #onNotification(payload: string): void {
    const { logger, name, id } = this.#options;
    const notification = parseNotification(payload);
    const ours = notification !== null && notification.name === name;
    this.#instruments.notification(ours);
    if (!notification) logger.debug({ name, payload: payload.slice(0, 200) }, 'drizzle-leader: ignored a malformed notification');
    if (!ours) return;
    const state = this.#state;
    if (notification.action === 'resigned' && state.kind === 'follower' && notification.leaderId !== id) {
      this.#wakeForNotification();
    } else if (notification.action === 'request_resign' && state.kind === 'leader') {
      if (notification.term !== undefined && notification.term !== state.lease.term) return;
      this.#resignRequestedFor = state.lease.term;
      this.#wakeup.wake();
    }
  }

  /**
   * Wakes the follower at once for the first notification after a quiet spell; in a flood, at
   * most once per gap (the rest coalesce into one deferred wake). Regular polls do not count
   * against the gap, so a real resignation right after a poll is still acted on immediately.
   */
  #wakeForNotification(): void {
    const now = this.#now().monotonic;
    this.#notifiedAt ??= now;
    if (this.#deferredWake) return;
    const wait = this.#lastNotifiedWakeAt + MIN_NOTIFIED_ATTEMPT_GAP_MS - now;
    if (wait <= 0) {
      this.#lastNotifiedWakeAt = now;
      this.#wakeup.wake();
      return;
    }
    this.#deferredWake = setTimeout(() => {
      this.#deferredWake = null;
      this.#lastNotifiedWakeAt = this.#now().monotonic;
      if (this.#state.kind === 'follower') this.#wakeup.wake();
    }, wait);
  }
}

/** Creates an elector for one election name. Options are validated here; nothing touches the database until `start()`. */
export function createElector(db: LeaderDatabase, options: ElectorOptions = {}): Elector {
  return new Elector(db, options);
}
