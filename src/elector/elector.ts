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
 *
 * A graceful handoff told to every follower wakes all their processes at once, and on a small
 * machine the successor's election then competes for the CPU with them reading it (measured:
 * 10 candidates took 3x the two-commit floor, 2 took 1.9x; with the other 8 listening on
 * another channel, 10 took what 2 did). So once a term is known, one follower volunteers as
 * next in line (a `next_in_line` NOTIFY; the latest heard wins, and all listeners hear them in
 * the same commit order). The leader resigning that term tells it alone, on the volunteer's own
 * channel (`directChannel`); it elects at once and, once it leads, tells everyone `resigned` and
 * `elected`. The old leader listens until it hears a later term elected and reads the lease to
 * be sure; else, within HANDOFF_CONFIRM_MS, it tells everyone `resigned` itself. Followers that
 * hear a `resigned` while another is next in line wait a short, bounded stagger, skipping their
 * attempt if its `elected` arrives meanwhile, and look at the database once a little later (an
 * `elected` is a hint too). The volunteer is a hint like any other: forged, stale, dead or
 * unheard, it costs the others the leader's wait and the stagger, or with a forged `elected` in
 * its name that later look; without one for the resigning term everyone is told and elects at
 * once, as before.
 */

import { randomUUID } from 'node:crypto';
import type { SQL } from 'drizzle-orm';
import type { SessionBounds } from '../driver/types.js';
import { DrizzleLeaderError, ElectorStoppedError, InvalidOptionError, LeadershipLostError } from '../errors.js';
import { acquireStatementDatabase, MAX_CONNECT_TIMEOUT_MS } from '../lease/connection.js';
import { notify, readLease } from '../lease/statements.js';
import { createLeaseStore, type LeaseStore } from '../lease/store.js';
import { leaseHeldSql } from '../lease/transaction.js';
import { subscribeChannel } from '../listen/notifier.js';
import { directChannel, leadershipPayload, nextInLinePayload, parseElectorHint } from '../listen/payload.js';
import { type ElectorOptions, type ResolvedElectorOptions, resolveElectorOptions } from '../options.js';
import type {
  ElectorStats,
  LeaderDatabase,
  LeaderInfo,
  LeaderRun,
  LeadershipEvent,
  LeadershipListener,
  LeaderTask,
  Lease,
  LossReason,
} from '../types.js';
import { type Backoff, backoffDelay } from '../util/backoff.js';
import { type Instant, readClock } from '../util/clock.js';
import { settledWithin, withDeadline } from '../util/deadline.js';
import { deferred } from '../util/deferred.js';
import { Wakeup } from '../util/wakeup.js';
import { afterFailure, classifyFailure, isFatal } from './failures.js';
import { Instruments } from './instruments.js';
import { type LeaseTransactionConfig, type LeaseTransactionFn, runLeaseTransaction } from './lease-transaction.js';
import { endOverrunningTransaction, giveUpOverrun, LeaseKeyCheck, prepareLeaseTransaction } from './lease-work.js';
import { Subscribers } from './subscribers.js';
import { TaskRuns } from './task-runs.js';
import { sessionBounds, TrustWindow } from './trust.js';
import { LeaderWork, type WorkItem } from './work.js';

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
      /** Set when stop() or resign() began an ordered handover of this leadership (mutated in place: the loop holds this object). */
      handover: Handover | null;
    }
  | { readonly kind: 'stopping' }
  | { readonly kind: 'stopped' };

type LeaderState = Extract<State, { kind: 'leader' }>;

/**
 * An ordered handover in progress: the leadership has ended for everyone reading it (signal
 * aborted, `lost` emitted, `isLeader` false), but the lease is still held and renewed until the
 * term's work has drained; then the row is deleted with a NOTIFY.
 */
interface Handover {
  readonly reason: 'resigned' | 'stopped';
  /** Resolves when the drain is over and (for a resignation) the lease was given up. */
  readonly finished: Promise<void>;
  /** Ends the drain early: the leadership ended on its own meanwhile. */
  readonly cut: () => void;
}

/**
 * A wake from a notification is honoured at most this often (ms): a flood of forged or
 * duplicated notifications cannot turn into a flood of election statements.
 */
const MIN_NOTIFIED_ATTEMPT_GAP_MS = 50;

/** The widest spacing of notification wakes under a flood: at most about one notified attempt a second. */
const MAX_NOTIFIED_ATTEMPT_GAP_MS = 1_000;

/**
 * How long (ms) a follower that is not next in line waits after a `resigned` for the next in
 * line's `elected`, plus up to as much again at random so that, if it never comes, the others
 * do not all try at the same instant. This is all a forged, stale or dead volunteer costs.
 */
const HANDOFF_STAGGER_MS = 25;

/**
 * A follower that called its attempt off because the next in line said it won looks at the
 * database once, this long (ms) plus up to as much again at random, after: an `elected` is a
 * hint too, and a forged one (after a forged volunteer) would otherwise keep every follower
 * asleep until the old lease's end. One cheap election per follower per handoff, spread out,
 * after the successor has already committed.
 */
const HANDOFF_VERIFY_MS = 250;

/**
 * How long (ms) a leader that told only its next in line of its resignation waits to hear the
 * successor's `elected` before telling everyone (`resigned` on the shared channel): all a dead,
 * stopped or forged volunteer costs the others on top of their stagger.
 */
const HANDOFF_CONFIRM_MS = 50;

/** The bound (ms) on the leader's look at the database, and its `resigned` to all, after a directed resignation. */
const HANDOFF_CONFIRM_STATEMENT_MS = 1_000;

/**
 * Volunteering waits a random part of this (ms): the first volunteer's NOTIFY then usually
 * reaches the others before they send theirs, so a term costs about one volunteer, not one
 * per follower.
 */
const VOLUNTEER_SPREAD_MS = 20;

/** At most one volunteering NOTIFY per this many ms per elector, whatever notifications arrive. */
const VOLUNTEER_MIN_GAP_MS = 100;

/** Back-off after a failed statement: 100 ms doubling up to 2 s (capped further by the trust window). */
const ERROR_BACKOFF: Backoff = Object.freeze({ initialMs: 100, maxMs: 2_000 });

/** start() does not wait longer than this for the LISTEN connection: followers poll meanwhile. */
const LISTEN_READY_WAIT_MS = 2_000;

/** Seams for tests (see `dev/testing.ts`); not part of the public API. */
export interface ElectorInternals {
  /** Wraps the real lease store, e.g. to delay or fail one method. */
  readonly wrapStore?: (store: LeaseStore) => LeaseStore;
  /** false: no next-in-line volunteering or stagger, every follower elects on `resigned` (the benchmark's "before"). */
  readonly nextInLine?: boolean;
}

/** Database objects already warned about running poll-only: one line per database, not per elector. */
const warnedPollOnly = new WeakSet<object>();

/** Database objects already warned about a LISTEN that hears nothing. */
const undeliveredWarned = new WeakSet<object>();

/** How long after the loop ends the elector's own connections are closed. */
const CLOSE_DELAY_MS = 250;

/** How long the LISTEN delivery probe waits for its own notification. */
const PROBE_WAIT_MS = 3_000;

export class Elector<TDb extends LeaderDatabase = LeaderDatabase> {
  readonly #db: TDb;
  readonly #options: ResolvedElectorOptions;
  readonly #wrapStore: (store: LeaseStore) => LeaseStore;
  readonly #nextInLineEnabled: boolean;
  /** The server-side bounds of this elector's connections, from its timing (fixed for its life). */
  readonly #bounds: SessionBounds;
  /** Built when the loop starts, on the elector's own connections (see lease/connection.ts). */
  #store!: LeaseStore;
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
  /** The subscription to this candidate's own channel (`directChannel`): resignations meant for it alone. */
  #unlistenDirect: (() => Promise<void>) | null = null;
  #directListening = false;
  /** A `resigned` this follower alone was told (it is next in line): its election announces the handoff to the rest once won. */
  #directedBy: { readonly leaderId: string; readonly term: number } | null = null;
  /** A leader that resigned to its next in line alone, waiting to hear a later term elected. */
  #successorWait: { readonly term: number; readonly heard: () => void } | null = null;
  /**
   * A term this process may still hold in the database after stepping down locally; the loop
   * releases it. A release that fails is retried until the lease can have expired (`until`,
   * monotonic ms), then forgotten: after that there is nothing left to release.
   */
  #unreleased: { readonly term: number; readonly until: number } | null = null;
  /** Callers of resign() waiting for the loop to send the resignation. */
  #releaseWaiters: (() => void)[] = [];
  /** A `request_resign` notification asked this leader to renew now, and so read the request from the database. */
  #renewSoon = false;
  /** Spacing of notification wakes, doubled by each notified election that was denied (a flood), reset by a win. */
  #notifiedGapMs = MIN_NOTIFIED_ATTEMPT_GAP_MS;
  /** Rejecters of pending `waitForLeadership()` calls, called by `stop()`. */
  readonly #leadershipWaiters = new Set<(error: unknown) => void>();
  /** Monotonic ms before which this candidate does not campaign (after resigning). */
  #holdOffUntil = 0;
  #trustTimer: NodeJS.Timeout | null = null;
  #consecutiveErrors = 0;
  #lastNotifiedWakeAt = Number.NEGATIVE_INFINITY;
  #deferredWake: NodeJS.Timeout | null = null;
  /** Destroys the own pools' connections (statements passed their deadlines: a connection may be dead). */
  #resetConnections: () => void = () => {};
  /** Statements in a row that got no answer within their deadline. */
  #unanswered = 0;
  /** The LISTEN delivery probe in flight, if any. */
  #probe: { readonly token: string; readonly heard: () => void } | null = null;
  /** Whether LISTEN has been established at least once. */
  #listening = false;
  /** Elections sent so far (a LISTEN (re)established after the first means notifications may have been missed). */
  #attempts = 0;
  /** When a `resigned` notification last woke this follower (monotonic ms), for the handoff latency hook. */
  #notifiedAt: number | null = null;
  /** The latest `next_in_line` volunteer heard (arrival order is commit order, the same for every listener). */
  #nextInLine: { readonly term: number; readonly id: string; readonly direct: boolean } | null = null;
  /** This follower's own volunteering, waiting out its random spread. */
  #volunteer: { readonly term: number; readonly timer: NodeJS.Timeout } | null = null;
  #lastVolunteeredAt = Number.NEGATIVE_INFINITY;
  /** The term this follower's last election found held by another: what it volunteers for once LISTEN is up, if it was not then. */
  #lastDeniedTerm: number | null = null;
  /** A `resigned` heard while another follower is next in line: its attempt, put off until `timer`. */
  #stagger: { readonly term: number; readonly successor: string; readonly timer: NodeJS.Timeout } | null = null;
  /** The look at the database after a stagger an `elected` hint called off. */
  #verify: NodeJS.Timeout | null = null;
  /** Tasks and lease-checked transactions in flight, by term: what a handover drains. */
  readonly #work = new LeaderWork();
  /**
   * The connection overrunning transactions are ended from, once the loop has opened it: the
   * election connection, idle while this elector leads, so that ending them (a cancel every
   * 100 ms with postgres.js) never queues in front of a renewal.
   */
  #leadDb: LeaderDatabase | null = null;
  /** stop() was called: a follower no longer campaigns, even while a leadership drains. */
  #stopRequested = false;
  /** Ends each live `runWhileLeader` runner (called by stop(), after the drain). */
  readonly #runEnders = new Set<() => void>();
  /** The check that the table has the key lease-checked transactions rely on, made once. */
  readonly #leaseKey = new LeaseKeyCheck();

  constructor(db: TDb, options: ElectorOptions = {}, internals: ElectorInternals = {}) {
    this.#options = resolveElectorOptions(options);
    if (db === null || typeof db !== 'object' || typeof (db as { select?: unknown }).select !== 'function') {
      throw new InvalidOptionError('db', db, 'a Drizzle PostgreSQL database (drizzle(client))');
    }
    if (typeof (db as { rollback?: unknown }).rollback === 'function') {
      // Election statements must never run inside a transaction they did not open.
      throw new InvalidOptionError('db', db, 'the database object itself, not a transaction (tx) of it');
    }
    this.#db = db;
    const { name, logger } = this.#options;
    this.#wrapStore = internals.wrapStore ?? ((store) => store);
    this.#nextInLineEnabled = internals.nextInLine !== false;
    this.#bounds = sessionBounds(this.#options);
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
    return this.#activeLeadership() !== null;
  }

  /** The current leadership, or null. Same trust check as `isLeader`. */
  get lease(): Lease | null {
    return this.#activeLeadership()?.lease ?? null;
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
   * right after `await start()`: within the connect timeout plus one statement timeout (both at
   * most the trust window), whatever the network does. Rejects (and stops) when that attempt
   * meets what retrying cannot fix: `LeaseTableMissingError`, `LeaseTableOutdatedError`, or
   * `DatabaseUnusableError` (wrong password or user, unknown database or host, not a
   * PostgreSQL server, no privilege). Other errors (server down) are logged and retried.
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
    if (isFatal(error)) {
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
    this.#stopRequested = true;
    for (const reject of [...this.#leadershipWaiters]) reject(new ElectorStoppedError());
    // The ordered handover: the task signals abort now, the lease is kept (and renewed) until
    // the term's tasks and transactions have returned or drainTimeout has passed.
    await this.#handOver('stopped');
    this.#stepDown('stopped');
    this.#state = { kind: 'stopping' };
    for (const end of [...this.#runEnders]) end();
    if (this.#deferredWake) clearTimeout(this.#deferredWake);
    this.#cancelHandoffTimers();
    this.#cancelVolunteer();
    // Nothing a notification says matters to a stopping elector, except its successor's
    // `elected` after a resignation told to the next in line alone. Otherwise let LISTEN go
    // before the loop sends the resignation, so the NOTIFY it carries does not come back to wake
    // this process (and its LISTEN backend) while the successor elects. Waits for nothing on the network.
    if (!this.#resignsToSuccessor(this.#unreleased?.term)) this.#stopListening();
    this.#wakeup.wake();
    // Bounded in every state: the loop's statements carry server- and client-side bounds, but a
    // partition can still hold one; wait for it at most one ttl (the loop releases a late win
    // itself when it returns).
    const bound = settledWithin(this.#loop, this.#options.ttl);
    await bound;
    this.#stopListening();
    this.#state = { kind: 'stopped' };
    // Let listeners hear `lost: stopped` before stop() resolves, but never wait on a stuck one.
    await settledWithin(this.#subscribers.drained(), 1_000);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * Steps down and stays a candidate. At once: the leader tasks' signal aborts, `isLeader`
   * turns false and listeners hear `lost: resigned`. Then, once the term's `runWhileLeader`
   * tasks and lease-checked transactions have returned (or `drainTimeout` has passed, logged
   * with what overran), the row of the term is deleted with a NOTIFY, so another candidate takes
   * over; this one waits a moment before campaigning again. Resolves true if this elector was
   * leading, once the resignation has been sent.
   */
  async resign(): Promise<boolean> {
    if (this.#activeLeadership() === null) return false;
    await this.#handOver('resigned');
    return true;
  }

  /** Receives every transition, in order. A throwing or slow listener never blocks the elector. Returns an unsubscribe function. */
  subscribe(listener: LeadershipListener): () => void {
    return this.#subscribers.add(listener);
  }

  /**
   * Calls `task(signal, lease)` each time leadership is gained; `signal` aborts the moment that
   * leadership ends (lost renewal, trust deadline, replaced term, resign, stop). Like client-go's
   * OnStartedLeading(ctx). On `stop()` and `resign()` the lease is given up only after the task
   * has returned (up to `drainTimeout`), so a successor never runs alongside it.
   *
   * Returns a handle: `cancel()` stops further runs and aborts the current one; `done` resolves
   * once the runs are over (cancelled, or the elector stopped) and the last one has returned.
   */
  runWhileLeader(task: LeaderTask, options: { label?: string } = {}): LeaderRun {
    if (this.#stopped) throw new ElectorStoppedError();
    if (typeof task !== 'function') throw new InvalidOptionError('task', task, 'a function (signal, lease) => void | Promise<void>');
    const runs = new TaskRuns(this.#work, this.#options.logger, TaskRuns.label(task, options.label));
    const launch = (lease: Lease, leadership: AbortSignal) =>
      runs.launch(lease.term, leadership, { name: this.#options.name }, (signal) => task(signal, lease));
    runs.onEnd(
      this.#onTransition((event) => {
        if (event.type !== 'gained') return;
        const state = this.#state;
        if (state.kind === 'leader' && state.lease.term === event.term) launch(state.lease, state.controller.signal);
      }),
    );
    const end = () => runs.end();
    this.#runEnders.add(end);
    runs.onEnd(() => this.#runEnders.delete(end));
    const leading = this.#activeLeadership();
    if (leading) launch(leading.lease, leading.controller.signal);
    return runs.handle;
  }

  /**
   * Runs `fn(tx, lease, signal)` in a Drizzle transaction on this elector's database that
   * commits only if this elector's exact term holds the lease: the database checks it (this
   * name, this leader id, this term, unexpired by its own clock) when the transaction takes its
   * lock, before `fn` runs, and no other term can be elected until the transaction commits or
   * rolls back. The holder's own renewals are not held up by it.
   *
   * Throws `LeadershipLostError` without running `fn` when this elector does not lead or the
   * database no longer holds its term, and when the transaction outlived `config.timeout`
   * (ended and rolled back). `config` also takes Drizzle's transaction config (isolation level,
   * access mode). `signal` aborts when the leadership ends; the transaction may still commit
   * safely until then, since its lock keeps the term in place. Same database only.
   */
  async transaction<T>(fn: LeaseTransactionFn<TDb, T>, config: LeaseTransactionConfig = {}): Promise<T> {
    const { name, table, id } = this.#options;
    const prepared = prepareLeaseTransaction(this.#db, fn, config, this.#options, 'elector.transaction()');
    await this.#checkLeaseKey();
    const leadership = this.#activeLeadership();
    if (!leadership) throw new LeadershipLostError(name, null, 'not-leader');
    return runLeaseTransaction({
      db: this.#db,
      table,
      lease: leadership.lease,
      leaderId: id,
      signal: leadership.controller.signal,
      timeoutMs: prepared.timeoutMs,
      lockDeadlineMs: this.#statementDeadlineMs(),
      guard: prepared.driver.guardTransaction,
      checkOut: prepared.driver.checkOut,
      exclusive: prepared.driver.exclusiveTransactions,
      work: this.#work,
      end: (item) => this.#endTransaction(item),
      sessionEndSafe: prepared.driver.sessionEndSafe,
      connectionGone: prepared.driver.connectionGone,
      config: prepared.config,
      fn,
    });
  }

  /**
   * The lighter form of `transaction()`, for one write that cannot sit in a transaction of its
   * own: a condition for its `where` that is true only while this term holds the lease at the
   * statement's start, and that keeps any other term from being elected until the write's
   * transaction ends. Throws `LeadershipLostError` when this elector does not lead now. The
   * write carries no bounds of its own: a long enclosing transaction holds failover back.
   */
  leaseHeld(): SQL {
    const leadership = this.#activeLeadership();
    if (!leadership) throw new LeadershipLostError(this.#options.name, null, 'not-leader');
    const { name, id, table } = this.#options;
    return leaseHeldSql(table, { name, leaderId: id, term: leadership.lease.term });
  }

  /** Resolves with the lease once this elector leads (at once if it already does). */
  waitForLeadership(options: { signal?: AbortSignal } = {}): Promise<Lease> {
    const current = this.#activeLeadership();
    if (current) return Promise.resolve(current.lease);
    if (this.#stopped) return Promise.reject(new ElectorStoppedError());
    return new Promise((resolve, reject) => {
      const { signal } = options;
      if (signal?.aborted) return reject(signal.reason);
      const settle = (outcome: () => void) => {
        unsubscribe();
        signal?.removeEventListener('abort', onAbort);
        this.#leadershipWaiters.delete(onStop);
        outcome();
      };
      const onAbort = () => settle(() => reject(signal?.reason));
      const onStop = (error: unknown) => settle(() => reject(error));
      const unsubscribe = this.#onTransition((event) => {
        if (event.type === 'gained') settle(() => resolve(event.lease));
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#leadershipWaiters.add(onStop);
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

  /** The leadership as the application sees it: trusted, and not being handed over. */
  #activeLeadership(): LeaderState | null {
    const state = this.#trustedLeadership();
    return state && !state.handover ? state : null;
  }

  /**
   * The leader state if still trusted (a leadership being handed over included: the loop keeps
   * renewing it); steps down (synchronously) if the window has passed.
   */
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
    this.#holdUnreleased(record.term);
    const now = this.#now();
    if (!trust.trusted(now)) {
      // The winning statement took longer than the trust window: the win is unusable.
      this.#options.logger.warn(
        { name: lease.name, term: lease.term },
        'drizzle-leader: election answered after the trust window; not taking it',
      );
      return;
    }
    this.#state = { kind: 'leader', lease, trust, gainedAt: now, controller: new AbortController(), handover: null };
    this.#cancelHandoffTimers();
    this.#cancelVolunteer();
    this.#consecutiveErrors = 0;
    this.#renewSoon = false;
    this.#notifiedGapMs = MIN_NOTIFIED_ATTEMPT_GAP_MS;
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

  /**
   * leader → follower, locally: the abort signal fires and listeners hear `lost` before anything
   * else happens (unless a handover already told them, when it began).
   */
  #stepDown(reason: LossReason): void {
    const state = this.#state;
    if (state.kind !== 'leader') return;
    this.#state = { kind: 'follower' };
    this.#renewSoon = false;
    this.#clearTrustTimer();
    if (state.handover) state.handover.cut();
    else this.#announceEnd(state, reason);
    // Denied or replaced: the row is no longer ours to delete. Otherwise the loop releases it,
    // for as long as the lease can still be alive: one ttl from now at most.
    if (reason === 'renewal-denied' || reason === 'term-replaced') this.#unreleased = null;
    else if (this.#unreleased?.term === state.lease.term) this.#holdUnreleased(state.lease.term);
    this.#wakeup.wake();
  }

  /** The leadership is over for everyone reading it: the task signal aborts, listeners hear `lost`. */
  #announceEnd(state: LeaderState, reason: LossReason): void {
    this.#instruments.lost(state.lease.term, reason, this.#now().monotonic - state.gainedAt.monotonic);
    state.controller.abort(new DrizzleLeaderError(`leadership of term ${state.lease.term} ended: ${reason}`));
    this.#emit({ type: 'lost', term: state.lease.term, reason });
  }

  /**
   * The ordered handover (stop, resign, a requested resignation). The leadership ends at once
   * for its readers (`#announceEnd`); the loop keeps renewing the lease while the term's tasks
   * and lease-checked transactions finish, up to `drainTimeout`; what overran is logged, and
   * transactions still open are ended (their lock would hold the successor back anyway). Then
   * a resignation steps down and waits for the loop to send DELETE + NOTIFY; a stop returns to
   * `#stop`, which does the same through the loop's exit. Resolves at once when not leading.
   */
  #handOver(reason: 'resigned' | 'stopped'): Promise<void> {
    const state = this.#trustedLeadership();
    if (!state) return Promise.resolve();
    if (state.handover) return state.handover.finished;
    this.#announceEnd(state, reason);
    const cut = deferred();
    const finished = this.#drainThenRelease(state, reason, cut.promise);
    state.handover = { reason, finished, cut: () => cut.resolve() };
    return finished;
  }

  async #drainThenRelease(state: LeaderState, reason: 'resigned' | 'stopped', cut: Promise<void>): Promise<void> {
    const { name, drainTimeout, logger } = this.#options;
    const term = state.lease.term;
    const overran = await this.#work.drain(term, drainTimeout, cut);
    // Renewals replace the state object (the handover travels with it): compare terms.
    const stillHeld = () => this.#state.kind === 'leader' && this.#state.lease.term === term;
    if (stillHeld()) giveUpOverrun(logger, overran, { name, term, drainTimeout });
    if (reason === 'stopped' || !stillHeld()) return;
    this.#holdOffUntil = this.#now().monotonic + this.#resignHoldOffMs();
    const released = this.#nextRelease();
    this.#stepDown('resigned');
    await released;
  }

  /**
   * Ends one open lease-checked transaction from the elector's own connection; bounded,
   * best-effort. Where the driver survives it, its session is terminated; elsewhere its running
   * statement is cancelled, tried every 100 ms while it stays open (an idle transaction has
   * nothing to cancel until it sends its next statement), until the server's own idle timeout
   * must have ended it.
   */
  #endTransaction(item: WorkItem): Promise<void> {
    return endOverrunningTransaction({
      leadDb: this.#leadDb,
      db: this.#db,
      item,
      work: this.#work,
      ttl: this.#options.ttl,
      deadlineMs: this.#statementDeadlineMs(),
      monotonic: () => this.#now().monotonic,
      logger: this.#options.logger,
      name: this.#options.name,
    });
  }

  /** Lease-checked transactions rely on `unique (name, term)` (migration 0002): refuse loudly without it. */
  #checkLeaseKey(): Promise<void> {
    return this.#leaseKey.ensure(this.#db, this.#options.table, this.#statementDeadlineMs());
  }

  /**
   * Ends a leadership when its trust runs out even if nothing reads `isLeader`, so the task
   * signal aborts on time. A timer can fire a little early by one of the clocks: then it is
   * armed again for what is left.
   */
  #armTrustTimer(remainingMs: number): void {
    this.#clearTrustTimer();
    this.#trustTimer = setTimeout(() => {
      const state = this.#trustedLeadership();
      if (state) this.#armTrustTimer(state.trust.remaining(this.#now()));
    }, Math.max(0, remainingMs) + 1);
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
    let release = async () => {};
    try {
      const { table, channel, logger } = this.#options;
      const bounds = this.#bounds;
      const [electing, leading] = await Promise.all([
        acquireStatementDatabase(this.#db, bounds, logger, 'elect'),
        acquireStatementDatabase(this.#db, bounds, logger, 'lead'),
      ]);
      release = () => Promise.all([electing.release(), leading.release()]).then(() => {});
      this.#leadDb = electing.db;
      this.#resetConnections = () => {
        electing.reset();
        leading.reset();
      };
      const statements = { db: electing.db, error: electing.error ?? leading.error };
      this.#store = this.#wrapStore(
        createLeaseStore({ elect: electing.db, lead: leading.db }, table, channel, (error) => this.#notifyDropped(error)),
      );
      if (statements.error) {
        // The first connection failed: that is the first attempt's outcome (no use trying the same twice).
        this.#attempts++;
        const failure = this.#failed(statements.error, 'election');
        attempted(failure);
        if (isFatal(failure)) return;
        await this.#sleep(this.#errorBackoff());
      } else {
        await Promise.all([this.#listenReady, this.#warmUp()]);
        void this.#probeDelivery(statements.db);
      }
      while (this.#isRunning()) {
        const state = this.#trustedLeadership() ?? this.#state;
        if (state.kind === 'leader') {
          await this.#leaderTurn(state);
        } else {
          const error = await this.#followerTurn(attempted);
          if (isFatal(error) && this.#attempts === 1) return; // start() rejects with it
        }
      }
    } catch (error) {
      // Only opening the elector's own connections can throw here (statements are caught below).
      attempted(this.#failed(error, 'election'));
    } finally {
      attempted(undefined);
      // stop() stepped down (or a late win arrived after it): the last statement of the loop.
      if (this.#store) await this.#releaseUnreleasedTerm();
      // Closing the connections needs no answer from anyone waiting on stop(), and is put off a
      // moment: backends exiting on the server right at the handoff would slow the successor's
      // election (measured: the 2-candidate handoff went from 3 to 8 ms on two cores).
      setTimeout(() => void release().catch(() => {}), CLOSE_DELAY_MS);
    }
  }

  /**
   * After winning a handoff it alone was told of: the `resigned` and this `elected`, in that
   * order, to everyone on the shared channel (watchers, the CLI, the other followers, the old
   * leader waiting to hear it). Best-effort and bounded, after `gained`: a follower that hears
   * neither finds the new lease at its next poll.
   */
  #announceHandoff(resigned: { readonly leaderId: string; readonly term: number }, term: number): void {
    const db = this.#leadDb;
    if (!db) return;
    const { name, id, channel } = this.#options;
    void withDeadline(
      notify(
        db,
        channel,
        leadershipPayload('resigned', name, resigned.leaderId, resigned.term),
        leadershipPayload('elected', name, id, term),
      ),
      HANDOFF_CONFIRM_STATEMENT_MS,
      () => 'handoff notice did not answer',
    ).catch((error) =>
      this.#instruments.handled('election', error, 'drizzle-leader: could not announce the handoff; followers find it by polling'),
    );
  }

  #isRunning(): boolean {
    const kind = this.#state.kind;
    return kind === 'leader' || (kind === 'follower' && !this.#stopRequested);
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
    this.#attempts++;
    const startedAt = this.#now();
    const notifiedAt = this.#notifiedAt;
    this.#notifiedAt = null;
    const directedBy = this.#directedBy;
    this.#directedBy = null;
    let result: Awaited<ReturnType<LeaseStore['elect']>>;
    try {
      // Told alone of a resignation, the next in line elects without its `elected` NOTIFY: it
      // would wake every other follower's process while this one still has its win to read.
      // It tells them once it leads (`#announceHandoff`).
      result = await this.#store.elect(
        { name, leaderId: id, ttlMs: ttl, ...(directedBy ? { channel: null } : {}) },
        this.#statementDeadlineMs(),
        (late) => this.#onLateAnswer(late),
      );
    } catch (error) {
      this.#instruments.election('failed', this.#now().monotonic - startedAt.monotonic);
      const failure = this.#failed(error, 'election');
      attempted(failure);
      if (isFatal(failure) && this.#attempts === 1) return failure;
      // Later, even what retrying "cannot" heal is retried (a password fixed, a table restored), loudly.
      await this.#sleep(this.#errorBackoff());
      return failure;
    }
    this.#consecutiveErrors = 0;
    this.#unanswered = 0;
    this.#instruments.election(result.won ? 'won' : 'denied', this.#now().monotonic - startedAt.monotonic);
    if (!result.won && notifiedAt !== null) {
      // Woken by a notification for a lease that is still held: forged, duplicated or stale.
      this.#notifiedGapMs = Math.min(MAX_NOTIFIED_ATTEMPT_GAP_MS, this.#notifiedGapMs * 2);
    }
    if (result.won) {
      if (!this.#isRunning()) {
        // stop() arrived while the statement was in flight: hand the lease straight back.
        this.#holdUnreleased(result.lease.term);
        return undefined;
      }
      this.#becomeLeader(result.lease, startedAt, notifiedAt);
      if (directedBy) this.#announceHandoff(directedBy, result.lease.term);
      attempted(undefined);
      return undefined;
    }
    attempted(undefined);
    // The database names the term: volunteer for it unless someone already has.
    if (result.holder && result.holder.leaderId !== id) {
      this.#lastDeniedTerm = result.holder.term;
      this.#volunteerFor(result.holder.term);
    }
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
    const due = this.#renewSoon ? 0 : this.#consecutiveErrors === 0 ? renewInterval - state.trust.elapsed(now) : this.#errorBackoff();
    await this.#sleep(Math.min(due, state.trust.remaining(now)));
    if (this.#trustedLeadership() !== state) return;
    const earlyForHint = this.#renewSoon;
    this.#renewSoon = false;
    const startedAt = this.#now();
    let record: LeaderInfo | null;
    try {
      record = await this.#store.renew(
        { name, leaderId: id, term: state.lease.term, ttlMs: ttl },
        state.trust.deadline(this.#options.clock),
        (late) => this.#onLateAnswer(late),
      );
    } catch (error) {
      this.#instruments.renewal('failed', this.#now().monotonic - startedAt.monotonic);
      this.#failed(error, 'renewal');
      return;
    }
    this.#unanswered = 0;
    this.#instruments.renewal(record ? 'ok' : 'denied', this.#now().monotonic - startedAt.monotonic);
    if (this.#trustedLeadership() !== state) {
      // We stepped down (trust expired, stop, resign) while the renewal was in flight. If it
      // extended our lease, or inserted a fresh one, hand it back so followers need not wait it out.
      if (record) this.#holdUnreleased(record.term);
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
    if (earlyForHint && !record.resignRequestedAt) {
      // A request_resign notification with no request behind it: forged or stale. Space the next ones wider.
      this.#notifiedGapMs = Math.min(MAX_NOTIFIED_ATTEMPT_GAP_MS, this.#notifiedGapMs * 2);
    }
    if (record.resignRequestedAt && !state.handover) {
      // requestResign wrote to this term's row: the database confirms what a notification only hinted.
      this.#options.logger.info({ name, term: record.term }, 'drizzle-leader: resignation requested');
      void this.#handOver('resigned');
    }
  }

  /**
   * How long an election (or a resignation) may go unanswered: one connection attempt plus the
   * server's statement timeout, both at most the trust window; longer, and the answer is moot.
   */
  #statementDeadlineMs(): number {
    const { statementTimeoutMs } = this.#bounds;
    return statementTimeoutMs + Math.min(MAX_CONNECT_TIMEOUT_MS, statementTimeoutMs);
  }

  /**
   * An election or renewal answered after its deadline, having won, extended or inserted a lease
   * nobody trusts: the loop releases it, so followers need not wait it out.
   */
  #onLateAnswer(lease: LeaderInfo): void {
    const state = this.#state;
    if (state.kind === 'leader' && state.lease.term === lease.term) return;
    this.#holdUnreleased(lease.term);
    this.#wakeup.wake();
  }

  /** Remembers a term to release until one ttl from now, when its lease has expired whatever happened. */
  #holdUnreleased(term: number): void {
    this.#unreleased = { term, until: this.#now().monotonic + this.#options.ttl };
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

  /**
   * Whether this leader's resignation of `term` goes to its next in line alone: a volunteer for
   * exactly that term is known, and this elector listens on the shared channel, so it can hear
   * the successor announce its win.
   */
  #resignsToSuccessor(term: number | undefined): boolean {
    const next = this.#nextInLine;
    return (
      this.#nextInLineEnabled &&
      this.#unlisten !== null &&
      this.#listening &&
      next?.direct === true &&
      next.term === term &&
      next.id !== this.#options.id
    );
  }

  /** Starts listening for a later term's `elected` (set before the resignation is sent, so none can slip past). */
  #awaitSuccessor(term: number): Promise<boolean> {
    const heard = deferred<boolean>();
    this.#successorWait = { term, heard: () => heard.resolve(true) };
    const timer = setTimeout(() => heard.resolve(false), HANDOFF_CONFIRM_MS);
    return heard.promise.finally(() => clearTimeout(timer));
  }

  /**
   * After a resignation told to the next in line alone: once a later term's `elected` is heard
   * (or HANDOFF_CONFIRM_MS has passed), the database says whether anyone holds a live lease of
   * a later term. If not (the volunteer was dead, stopped or forged, or the `elected` was), the
   * resignation is told to everyone, who then elect as after any `resigned`. Best-effort and
   * bounded: without it the others still find the row gone at their next poll.
   */
  async #confirmSuccession(term: number, heard: Promise<boolean>): Promise<void> {
    const db = this.#leadDb;
    if (!db) return;
    const { name, id, channel, table } = this.#options;
    try {
      if (await heard) {
        const lease = await withDeadline(readLease(db, table, name), HANDOFF_CONFIRM_STATEMENT_MS, () => 'lease read did not answer');
        if (lease && lease.term > term && lease.remainingMs > 0) return;
      }
      await withDeadline(
        notify(db, channel, leadershipPayload('resigned', name, id, term)),
        HANDOFF_CONFIRM_STATEMENT_MS,
        () => 'resignation notice did not answer',
      );
    } catch (error) {
      const message = 'drizzle-leader: could not tell the followers of the resignation; they find it by polling';
      this.#instruments.handled('resignation', error, message, { term });
    }
  }

  /** Unsubscribes from both channels. Waits for nothing on the network. */
  #stopListening(): void {
    for (const unlisten of [this.#unlisten, this.#unlistenDirect]) unlisten?.().catch(() => {});
    this.#unlisten = null;
    this.#unlistenDirect = null;
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
    const held = this.#unreleased;
    if (held && this.#now().monotonic >= held.until) {
      this.#unreleased = null; // the lease has expired by now: nothing left to release
    } else if (held && this.#state.kind !== 'leader') {
      const { name, id, ttl, channel } = this.#options;
      const { term } = held;
      const successor = this.#resignsToSuccessor(term) ? this.#nextInLine : null;
      try {
        // Bounded on the server (lock_timeout) and, in case of a partition, here: the lease expires anyway.
        const resigned = withDeadline(
          this.#store.resign({ name, leaderId: id, term, ...(successor ? { channel: directChannel(channel, successor.id) } : {}) }),
          ttl,
          () => `resignation did not answer within ${ttl} ms`,
        );
        const heard = successor ? this.#awaitSuccessor(term) : null;
        const deleted = await resigned;
        if (this.#unreleased === held) this.#unreleased = null;
        if (heard && deleted) await this.#confirmSuccession(term, heard);
      } catch (error) {
        // The lease will expire on its own; releasing it only makes failover faster.
        this.#noteUnanswered(error);
        this.#instruments.handled('resignation', error, 'drizzle-leader: could not release the lease; it will expire on its own', { term });
        if (this.#state.kind === 'stopping' && this.#unreleased === held) this.#unreleased = null;
      } finally {
        this.#successorWait = null;
      }
    }
    const waiters = this.#releaseWaiters;
    this.#releaseWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Replaces the connections when a failure says they are dead or out of step (failures.ts). */
  #noteUnanswered(error: unknown): void {
    const next = afterFailure(error, this.#unanswered);
    this.#unanswered = next.unanswered;
    if (next.reset) this.#resetConnections();
  }

  /** Counts a failed statement; returns `LeaseTableMissingError` when retrying cannot help, else the error. */
  #failed(error: unknown, operation: 'election' | 'renewal'): unknown {
    this.#consecutiveErrors++;
    this.#noteUnanswered(error);
    const { name, table, logger } = this.#options;
    const { fatal, why } = classifyFailure(error, table);
    if (fatal) {
      logger.error({ err: fatal, name }, `drizzle-leader: ${operation} failed, and retrying cannot fix it`);
      return fatal;
    }
    this.#instruments.handled(operation, error, `drizzle-leader: ${operation} failed; retrying${why}`);
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
      heartbeatMs: this.#options.renewInterval,
      notification: (payload) => this.#onNotification(payload),
      listening: () => {
        this.#listening = true;
        listening.resolve();
        // Anything sent while we were not listening is lost: look at the database now. Before
        // the first attempt there is nothing to re-check: it is about to look anyway.
        if (this.#state.kind === 'follower' && this.#attempts > 0) this.#wakeup.wake();
        this.#volunteerOnceListening();
      },
      disconnected: (error) => {
        listening.resolve();
        this.#instruments.handled('listen', error, 'drizzle-leader: LISTEN connection lost; reconnecting (followers poll meanwhile)', {
          channel,
        });
      },
    });
    if (this.#unlisten && this.#nextInLineEnabled) {
      this.#unlistenDirect = subscribeChannel(this.#db, listen, directChannel(channel, this.#options.id), {
        heartbeatMs: this.#options.renewInterval,
        notification: (payload) => this.#onDirectNotification(payload),
        listening: () => {
          this.#directListening = true;
          this.#volunteerOnceListening();
        },
        disconnected: () => {},
      });
    }
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

  /**
   * Sends one notification of its own through the statement connections and waits for it on
   * the LISTEN connection. Behind a transaction-mode pooler LISTEN succeeds but hears nothing,
   * and failover silently falls back to the lease: say so, once, with the fix.
   */
  async #probeDelivery(db: LeaderDatabase): Promise<void> {
    const { channel, logger, name, listen } = this.#options;
    if (!this.#unlisten || !this.#listening || undeliveredWarned.has(this.#db)) return;
    const heard = deferred();
    this.#probe = { token: `drizzle-leader-probe:${randomUUID()}`, heard: heard.resolve };
    try {
      await withDeadline(notify(db, channel, this.#probe.token), PROBE_WAIT_MS, () => 'probe not sent');
    } catch {
      return; // statements failing is reported by the loop
    }
    if ((await settledWithin(heard.promise, PROBE_WAIT_MS)) || !this.#isRunning() || undeliveredWarned.has(this.#db)) return;
    undeliveredWarned.add(this.#db);
    logger.warn(
      { name, channel },
      `drizzle-leader: LISTEN is up but did not receive a notification sent through the database within ${PROBE_WAIT_MS} ms ` +
        `(a transaction-mode pooler?); failover waits for the lease instead of milliseconds. ` +
        (typeof listen === 'object'
          ? 'Check that listen.url is a direct or session-mode connection.'
          : 'Pass listen: { url: DIRECT_URL }.'),
    );
  }

  #onNotification(payload: string): void {
    const { logger, name, id } = this.#options;
    if (payload === this.#probe?.token) {
      this.#probe.heard();
      return;
    }
    const notification = parseElectorHint(payload);
    const ours = notification !== null && notification.name === name;
    this.#instruments.notification(ours);
    if (!notification) logger.debug({ name, payload: payload.slice(0, 200) }, 'drizzle-leader: ignored a malformed notification');
    if (!ours) return;
    const wait = this.#successorWait;
    if (wait && notification.action === 'elected' && (notification.term ?? 0) > wait.term) wait.heard();
    const state = this.#state;
    if (notification.action === 'next_in_line') {
      this.#nextInLine = { term: notification.term, id: notification.id, direct: notification.direct === true };
      if (this.#volunteer?.term === notification.term) this.#cancelVolunteer();
    } else if (notification.action === 'resigned' && state.kind === 'follower' && notification.leaderId !== id) {
      this.#notifiedAt ??= this.#now().monotonic;
      if (this.#stagger) return; // a duplicate: the put-off attempt is coming anyway
      const next = this.#nextInLine;
      if (this.#nextInLineEnabled && next && next.term === notification.term && next.id !== id) {
        this.#staggerAttempt(notification.term as number, next.id);
      } else {
        this.#wakeForNotification();
      }
    } else if (notification.action === 'elected' && state.kind === 'follower' && notification.leaderId !== id) {
      const stagger = this.#stagger;
      // Only the one expected winner's `elected` calls the attempt off: any other (forged, or
      // from a follower that did not know) leaves it as it was.
      if (stagger && notification.leaderId === stagger.successor && (notification.term ?? 0) > stagger.term) {
        this.#cancelStagger();
        this.#notifiedAt = null;
        this.#verifyHandoff();
        this.#volunteerFor(notification.term as number);
      }
    } else if (notification.action === 'request_resign' && state.kind === 'leader') {
      if (notification.term !== undefined && notification.term !== state.lease.term) return;
      // A hint: renew now, and the renewal reads whether the database holds a request for this term.
      this.#renewSoon = true;
      this.#wakeForNotification();
    }
  }

  /**
   * A notification on this candidate's own channel: a leader that heard it volunteer resigned
   * to it alone. It elects at once (spaced like any notified wake), whatever volunteer it heard
   * last itself. Anything else on this channel is ignored: only `resigned` is sent here.
   */
  #onDirectNotification(payload: string): void {
    const { name, id } = this.#options;
    const notification = parseElectorHint(payload);
    this.#instruments.notification(notification?.name === name);
    if (notification?.name !== name || notification.action !== 'resigned') return;
    if (this.#state.kind !== 'follower' || !this.#isRunning() || notification.leaderId === id || !notification.leaderId) return;
    this.#directedBy = { leaderId: notification.leaderId, term: notification.term ?? 0 };
    this.#notifiedAt ??= this.#now().monotonic;
    this.#cancelStagger();
    this.#wakeForNotification();
  }

  /**
   * Puts off this follower's attempt after a `resigned`, giving the next in line the time to win
   * and say so. Bounded: when the stagger ends without its `elected` (lost, late, or no
   * volunteer alive), the attempt is made, spaced like any notified wake.
   */
  #staggerAttempt(term: number, successor: string): void {
    const delay = HANDOFF_STAGGER_MS * (1 + Math.random());
    const timer = setTimeout(() => {
      this.#stagger = null;
      if (this.#isRunning() && this.#state.kind === 'follower') this.#wakeForNotification();
    }, delay);
    this.#stagger = { term, successor, timer };
  }

  /** Drops the put-off attempt (the look at the database it may have led to stays: see `#verifyHandoff`). */
  #cancelStagger(): void {
    if (this.#stagger) clearTimeout(this.#stagger.timer);
    this.#stagger = null;
  }

  /** Drops the stagger and the look: this elector leads, or stops. */
  #cancelHandoffTimers(): void {
    this.#cancelStagger();
    if (this.#verify) clearTimeout(this.#verify);
    this.#verify = null;
  }

  /**
   * Confirms by the database, a little later, the election an `elected` hint announced: a
   * regular attempt (not a notified one, so a denial does not widen the notification gap) that
   * finds the successor's live lease and sleeps until its end, or wins if there is none. A look
   * already pending is kept, never pushed back: forged `resigned` + `elected` pairs repeated
   * faster than the look would otherwise put it off until the lease's end (found by review).
   */
  #verifyHandoff(): void {
    if (this.#verify) return;
    const delay = HANDOFF_VERIFY_MS * (1 + Math.random());
    this.#verify = setTimeout(() => {
      this.#verify = null;
      if (this.#isRunning() && this.#state.kind === 'follower') this.#wakeup.wake();
    }, delay);
  }

  /**
   * Offers this follower as next in line for `term`, after a random part of the spread and
   * unless someone's offer for that term is heard first. Only while LISTEN is up: a follower
   * that cannot hear the resignation must not be the one the others wait for.
   */
  #volunteerFor(term: number): void {
    if (!this.#nextInLineEnabled || !this.#unlisten || !this.#listening || !this.#directListening) return;
    if (this.#state.kind !== 'follower' || !this.#isRunning()) return;
    // A candidate holding off after its resignation would not elect until the hold-off ends:
    // the others would wait for it. It volunteers after its next attempt instead.
    if (this.#holdOffUntil > this.#now().monotonic) return;
    if (this.#nextInLine?.term === term || this.#volunteer?.term === term) return;
    this.#cancelVolunteer();
    const now = this.#now().monotonic;
    const delay = Math.max(Math.random() * VOLUNTEER_SPREAD_MS, this.#lastVolunteeredAt + VOLUNTEER_MIN_GAP_MS - now);
    const timer = setTimeout(() => {
      this.#volunteer = null;
      const db = this.#leadDb;
      if (!db || this.#state.kind !== 'follower' || !this.#isRunning() || this.#nextInLine?.term === term) return;
      this.#lastVolunteeredAt = this.#now().monotonic;
      const { name, id, channel } = this.#options;
      // Best-effort: without a volunteer the next handoff is simply the herd of before.
      void notify(db, channel, nextInLinePayload(name, id, term)).catch(() => {});
    }, delay);
    this.#volunteer = { term, timer };
  }

  /**
   * Both LISTENs are up: a follower whose last election came before that (its own channel's
   * LISTEN is not waited for by start(), and a reconnect can come at any time) volunteers now
   * for the term it found, instead of at its next attempt, which may be a whole interval away.
   */
  #volunteerOnceListening(): void {
    if (this.#lastDeniedTerm !== null && this.#listening && this.#directListening) this.#volunteerFor(this.#lastDeniedTerm);
  }

  #cancelVolunteer(): void {
    if (this.#volunteer) clearTimeout(this.#volunteer.timer);
    this.#volunteer = null;
  }

  /**
   * A lease statement went without its NOTIFY (the server's queue was full): followers fall back
   * to polling. If it was this leader's resignation, nobody heard it: hold off past the
   * followers' longest poll (one ttl), or a requested handover would only hand the lease back to
   * this process after its short hold-off.
   */
  #notifyDropped(error: unknown): void {
    const now = this.#now().monotonic;
    if (this.#holdOffUntil > now) this.#holdOffUntil = Math.max(this.#holdOffUntil, now + this.#options.ttl + this.#resignHoldOffMs());
    this.#options.logger.warn(
      { err: error, name: this.#options.name, channel: this.#options.channel },
      "drizzle-leader: the server's NOTIFY queue is full (a LISTEN session stuck in a transaction?); the lease statement went without its notification, so others learn of it by polling",
    );
  }

  /**
   * Wakes the loop at once for the first notification after a quiet spell; in a flood, at most
   * once per gap (the rest coalesce into one deferred wake), the gap doubling from 50 ms to 1 s
   * while notified elections keep being denied. Regular polls do not count
   * against the gap, so a real resignation right after a poll is still acted on immediately.
   */
  #wakeForNotification(): void {
    const now = this.#now().monotonic;
    if (this.#deferredWake) return;
    const wait = this.#lastNotifiedWakeAt + this.#notifiedGapMs - now;
    if (wait <= 0) {
      this.#lastNotifiedWakeAt = now;
      this.#wakeup.wake();
      return;
    }
    this.#deferredWake = setTimeout(() => {
      this.#deferredWake = null;
      this.#lastNotifiedWakeAt = this.#now().monotonic;
      if (this.#isRunning()) this.#wakeup.wake();
    }, wait);
  }
}

/** Creates an elector for one election name. Options are validated here; nothing touches the database until `start()`. */
export function createElector<TDb extends LeaderDatabase>(db: TDb, options: ElectorOptions = {}): Elector<TDb> {
  return new Elector(db, options);
}

/** `elector.leaseHeld()`: a condition for one write's `where` that holds only while the elector's term holds the lease. */
export function leaseHeld(elector: Elector<LeaderDatabase>): SQL {
  return elector.leaseHeld();
}
