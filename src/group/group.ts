/**
 * The elector group: one member of a fleet that campaigns for many election names with ONE
 * loop and a constant number of statements per renew interval, and shares the names evenly
 * with the other live members (River's internal/leadership, many names at once).
 *
 * # State
 *
 * Per name this member is either a follower or the leader of exactly one term:
 *
 *   follower ──batched election won──▶ leader(term, TrustWindow)
 *   leader ──renewal denied / term replaced / trust expired / rebalanced / resigned /
 *            removed / stopped──▶ follower
 *
 * Every transition happens in this file, and only the loop (`#run`) talks to the lease table:
 * per turn at most one membership heartbeat, one renewal of every held name, one resignation of
 * every name being given up, and one election of every name that is due. Public calls set
 * intent (names to give up, names due for an election) and wake the loop.
 *
 * # Trust, per name (safety rule 2)
 *
 * Each leadership carries its own `TrustWindow`, started at the instant the batched statement
 * that won or renewed it was SENT, so a slow batch shortens trust and never lengthens it.
 * `leads(name)` re-checks that window synchronously at every call; a timer steps down the
 * leaderships whose window passed even if nobody asks, aborting their task signals. A name
 * whose renewal was skipped (its row locked by someone else) keeps its old window: it is
 * retried, and lost only when that window ends, while the other names renew normally.
 *
 * # Terms (safety rules 3 and 4)
 *
 * Renew and resign name the exact (name, term) pairs this member holds, compared with the
 * STORED rows (lease/batch.ts): a stale term in a batch renews or deletes nothing. A name's new
 * leadership always has a new identity `term`. Renewals set only `expires_at`, elections set
 * `term`: the lock modes the lease-checked transactions rely on.
 *
 * # Membership and balance
 *
 * Each eligible member keeps a row of its own in the lease table under a reserved prefix
 * (`drizzle-leader:group:<group>:<weight>:<hash of id>`, leader_id = the member id), renewed by
 * the heartbeat that also reads every live member row: one statement per interval. From the
 * live members, `balance.ts` computes the same assignment on every member. A member elects the
 * names assigned to it at once; a name assigned elsewhere only when it has been free for a
 * grace period (its owner is slow or gone: liveness first, balance after). Names another live
 * member holds cost no statement of their own: the heartbeat (or the renewal it rides on) also
 * reads which of them have no live lease, each about every 3 ttl, and only those are elected. A member sheds
 * (resigns, with DELETE + NOTIFY, never steals) the names assigned to another live member: at
 * once when the change was announced (a join's or a graceful leave's own NOTIFY), otherwise only
 * once the membership it sees has been unchanged for one renew interval: a member that flaps
 * (its row expiring and coming back) does not move names back and forth. A member whose row was
 * not renewed between two heartbeats is looked at again when its row expires, not up to an
 * interval later: a crashed member's names are elected as soon as its leases allow.
 *
 * # Notifications (safety rule 5)
 *
 * Only hints: `resigned` makes a free name due (at once for its assigned owner, after a grace
 * for the others), `elected` records who holds it, a member row's notification makes the
 * heartbeat due. A member row's `resigned` (a graceful leave) also drops that member from the
 * view at once, provisionally: its names are elected before the heartbeat that confirms the
 * view, and nothing is shed until that heartbeat agrees, so a forged leave costs an election
 * that finds the names held. The database decides every leadership.
 */
import { createHash } from 'node:crypto';
import type { SQL } from 'drizzle-orm';
import type { SessionBounds } from '../driver/types.js';
import { afterFailure, classifyFailure, isFatal } from '../elector/failures.js';
import { type LeaseTransactionConfig, type LeaseTransactionFn, runLeaseTransaction } from '../elector/lease-transaction.js';
import { endOverrunningTransaction, giveUpOverrun, LeaseKeyCheck, prepareLeaseTransaction } from '../elector/lease-work.js';
import { Subscribers } from '../elector/subscribers.js';
import { TaskRuns } from '../elector/task-runs.js';
import { sessionBounds, TrustWindow } from '../elector/trust.js';
import { LeaderWork, type WorkItem } from '../elector/work.js';
import { DrizzleLeaderError, ElectorStoppedError, InvalidOptionError, LeadershipLostError } from '../errors.js';
import { electMany, heartbeat, leaveGroup, type MemberRow, type NameTerm, renewManyWithHeartbeat, resignMany } from '../lease/batch.js';
import { acquireStatementDatabase, MAX_CONNECT_TIMEOUT_MS } from '../lease/connection.js';
import { notifyingIfPossible } from '../lease/notify-fallback.js';
import { RESERVED_PREFIX } from '../lease/reserved.js';
import { leaseHeldSql } from '../lease/transaction.js';
import { subscribeChannel } from '../listen/notifier.js';
import { parseNotification } from '../listen/payload.js';
import {
  checkElectionName,
  checkLabel,
  ELECTOR_OPTION_NAMES,
  type ElectorOptions,
  type ResolvedElectorOptions,
  resolveElectorOptions,
} from '../options.js';
import type { LeaderDatabase, LeaderInfo, Lease, LossReason } from '../types.js';
import { type Backoff, backoffDelay } from '../util/backoff.js';
import { errorCode } from '../util/cause.js';
import { type Instant, readClock } from '../util/clock.js';
import { settledWithin, withDeadline } from '../util/deadline.js';
import { deferred } from '../util/deferred.js';
import { Wakeup } from '../util/wakeup.js';
import { assign, type Member, quotas } from './balance.js';
import { DuplicateNameError } from './errors.js';

/** Every member row of every group starts with this (inside the reserved namespace election names may not use). */
export const MEMBER_PREFIX = `${RESERVED_PREFIX}group:`;

/** The options a group takes, for the message that refuses an unknown one. */
const GROUP_OPTION_NAMES = [
  'names',
  'group',
  'eligible',
  'weight',
  ...[...ELECTOR_OPTION_NAMES].filter((o) => o !== 'name' && o !== 'hooks'),
];

/** Why one name's leadership ended: the single elector's reasons, plus a group's own. */
export type GroupLossReason =
  | LossReason
  /** Handed to the member the balance assigns it to (DELETE + NOTIFY). */
  | 'rebalanced'
  /** The name was removed from this member's set. */
  | 'removed';

export type GroupEvent =
  | { readonly type: 'gained'; readonly name: string; readonly term: number; readonly lease: Lease }
  | { readonly type: 'lost'; readonly name: string; readonly term: number; readonly reason: GroupLossReason };

export type GroupListener = (event: GroupEvent) => void | Promise<void>;

/** Runs while this member leads `name`; `signal` aborts the moment that leadership ends, for any reason. */
export type GroupTask = (name: string, signal: AbortSignal, lease: Lease) => void | Promise<void>;

/** The same handle as the single elector's `runWhileLeader` (`LeaderRun`), over every name. */
export interface GroupTaskHandle {
  /** Stops further runs and aborts the running ones (their signals); idempotent. */
  cancel(): void;
  /** Resolves once the runs are over (`cancel()`, or the group stopped) and every run has returned. Never rejects. */
  readonly done: Promise<void>;
  /** Whether a run of the task is in progress now, for any name. */
  readonly running: boolean;
  [Symbol.dispose](): void;
}

export interface ElectorGroupOptions extends Omit<ElectorOptions, 'name' | 'hooks'> {
  /** The election names this member campaigns for: unique, 1..127 characters each. Members of one group should list the same names. */
  names: readonly string[];
  /** Members of the same group share the names; 1..64 characters. Default `'default'`. */
  group?: string;
  /** `false`: this member never leads (and is not counted as a member). Default true. */
  eligible?: boolean;
  /** Relative capacity, an integer 1..1000: a member of weight 2 leads about twice as many names. Default 1. */
  weight?: number;
}

export interface GroupStats {
  /**
   * Statements sent, by kind, and how many failed. A renewal carries the membership heartbeat
   * too (one statement); `heartbeats` counts only those sent alone (while leading no name).
   */
  statements: { elections: number; renewals: number; heartbeats: number; resignations: number; failed: number };
  gained: number;
  lost: number;
}

type Held = {
  readonly lease: Lease;
  readonly trust: TrustWindow;
  readonly controller: AbortController;
};

/**
 * A leadership in its ordered handover: over for every reader (signal aborted, `lost` emitted,
 * `leads()` false), but still renewed until its term's tasks and lease-checked transactions have
 * returned or `drainTimeout` has passed; only then is it released (DELETE + NOTIFY), so a
 * successor's term never begins while this term's work still runs.
 */
type Draining = {
  lease: Lease;
  trust: TrustWindow;
  /** Ends the wait early: the leadership ended on its own, nothing is left to protect by waiting. */
  readonly cut: () => void;
  finished: Promise<void>;
};

/** Why a leadership ends with an ordered handover; the others end because it is already gone or untrusted. */
const ORDERED: ReadonlySet<GroupLossReason> = new Set(['stopped', 'rebalanced', 'removed', 'resigned']);

type Phase = 'idle' | 'running' | 'stopping' | 'stopped';

/** Back-off after a failed statement: 100 ms doubling up to 2 s. */
const ERROR_BACKOFF: Backoff = Object.freeze({ initialMs: 100, maxMs: 2_000 });

/** A batch election that waited out its lock timeout is split into this many parts; a part that waits again is split again. */
const ISOLATE_PARTS = 4;

/** Isolated groups elected per turn at most (each is one statement, and may wait out the lock timeout). */
const MAX_ISOLATED_PER_TURN = 8;

/** An overdue member's row is looked at this long after it expires by the heartbeat's count (timers and answers can run a little late). */
const EXPIRY_LOOK_MS = 10;

/** Notification wakes are honoured at most this often (ms): a flood of them cannot become a flood of elections. */
const MIN_NOTIFIED_GAP_MS = 50;

const CLOSE_DELAY_MS = 250;

/** start() waits at most this long for the LISTEN connection. */
const LISTEN_READY_WAIT_MS = 2_000;

/** A name this member may still hold in the database after stepping down locally; released by the loop until `until`. */
type Unreleased = { readonly term: number; readonly until: number };

/** What this member last learned about a name it does not lead. */
type Known = { readonly leaderId: string; readonly expiresAt: number };

export class ElectorGroup<TDb extends LeaderDatabase = LeaderDatabase> {
  readonly #db: TDb;
  readonly #options: ResolvedElectorOptions;
  readonly #group: string;
  readonly #eligible: boolean;
  readonly #weight: number;
  readonly #memberName: string;
  readonly #memberPrefix: string;
  readonly #bounds: SessionBounds;
  readonly #subscribers: Subscribers<GroupEvent>;
  readonly #transitionHooks = new Set<(event: GroupEvent) => void>();
  readonly #wakeup = new Wakeup();
  #phase: Phase = 'idle';
  #names: string[];
  /** The same names, for lookups: a fleet's member checks tens of thousands of hints and outcomes against them. */
  #nameSet: Set<string>;
  readonly #held = new Map<string, Held>();
  readonly #draining = new Map<string, Draining>();
  /** Tasks and lease-checked transactions in flight, by term (terms are unique across names): what a handover drains. */
  readonly #work = new LeaderWork();
  /** The renew-and-resign connection, once the loop opened it: it also ends overrunning transactions. */
  #leadDb: LeaderDatabase | null = null;
  readonly #leaseKey = new LeaseKeyCheck();
  /** stop() was called: nothing more is campaigned for while the leaderships drain. */
  #stopRequested = false;
  /** Ends each live `runWhileLeader` runner (called by stop(), after the drain). */
  readonly #runEnders = new Set<() => void>();
  readonly #unreleased = new Map<string, Unreleased>();
  /** Monotonic ms at which each name this member does not lead is next worth an election. */
  readonly #due = new Map<string, number>();
  /**
   * Names a live other member holds, by when (monotonic ms) this member should make sure that is
   * still so: a resignation whose NOTIFY was lost leaves a name free with nobody told. The look
   * rides on the next heartbeat or renewal (a read, `MemberInput.peek`), not on an election of
   * its own: those looks, each name at its own moment, were most of a fleet's statements.
   */
  readonly #peekAt = new Map<string, number>();
  readonly #known = new Map<string, Known>();
  #members: Member[] = [];
  #viewKey = '';
  #viewSince = 0;
  /** The view was changed by a leave's NOTIFY and no heartbeat has confirmed it yet. */
  #provisionalView = false;
  /** The next turn elects before its heartbeat or renewal (once per leave heard). */
  #electBeforeLook = false;
  /** Members whose row another member just inserted or deleted (its NOTIFY), by id → when heard (monotonic ms). */
  readonly #announced = new Map<string, number>();
  /** Members added or removed by the last view change and not (yet) announced: the hysteresis waits for them. */
  #unsettled = new Set<string>();
  /** Names a `resigned` hint arrived for, by when (monotonic ms): an election answered from an older snapshot must not bury it. */
  readonly #freed = new Map<string, number>();
  /** Groups of names elected apart from the batch, after a statement with them waited out its lock timeout; until `#isolatedUntil`. */
  #isolated: string[][] = [];
  #isolatedUntil = 0;
  #assignment: Map<string, string> | null = null;
  #heartbeatDueAt = 0;
  /** Each other member's row as last read: its stored `expires_at` (exact text); the same value again means not renewed. */
  #memberExpiry = new Map<string, string>();
  /** When a hint last asked for a heartbeat / a renewal (monotonic ms): one asked for while the statement was in flight still gets it. */
  #heartbeatAskedAt = Number.NEGATIVE_INFINITY;
  #renewAskedAt = Number.NEGATIVE_INFINITY;
  /** This member's row was deleted (stop): no statement may bring it back. */
  #left = false;
  #renewDueAt = Number.POSITIVE_INFINITY;
  #releaseRetryAt = 0;
  #consecutiveErrors = 0;
  #trustTimer: NodeJS.Timeout | null = null;
  /** When (monotonic ms) the armed trust timer fires. */
  #trustTimerAt = Number.POSITIVE_INFINITY;
  #deferredWake: NodeJS.Timeout | null = null;
  #lastNotifiedWakeAt = Number.NEGATIVE_INFINITY;
  #loop: Promise<void> | null = null;
  #started: Promise<void> | null = null;
  #stopped: Promise<void> | null = null;
  #unlisten: (() => Promise<void>) | null = null;
  #resetConnections: () => void = () => {};
  readonly #stats: GroupStats = {
    statements: { elections: 0, renewals: 0, heartbeats: 0, resignations: 0, failed: 0 },
    gained: 0,
    lost: 0,
  };

  constructor(db: TDb, options: ElectorGroupOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', options, 'an object with names');
    const { names, group, eligible, weight, ...single } = options;
    if ('name' in single)
      throw new InvalidOptionError('name', (single as { name: unknown }).name, 'names: [...] (a group campaigns for many)');
    if ('hooks' in single)
      throw new InvalidOptionError('hooks', (single as { hooks: unknown }).hooks, 'not supported by groups (use subscribe and stats)');
    for (const key of Object.keys(single)) {
      if (!ELECTOR_OPTION_NAMES.has(key))
        throw new InvalidOptionError(key, (single as Record<string, unknown>)[key], `one of ${GROUP_OPTION_NAMES.join(', ')}`);
    }
    this.#options = resolveElectorOptions(single);
    if (db === null || typeof db !== 'object' || typeof (db as { select?: unknown }).select !== 'function') {
      throw new InvalidOptionError('db', db, 'a Drizzle PostgreSQL database (drizzle(client))');
    }
    if (typeof (db as { rollback?: unknown }).rollback === 'function') {
      throw new InvalidOptionError('db', db, 'the database object itself, not a transaction (tx) of it');
    }
    this.#db = db;
    this.#group = checkLabel('group', group ?? 'default');
    if ([...this.#group].length > 64) throw new InvalidOptionError('group', group, 'a string of 1 to 64 characters');
    if (eligible !== undefined && typeof eligible !== 'boolean') throw new InvalidOptionError('eligible', eligible, 'true or false');
    this.#eligible = eligible ?? true;
    const w = weight ?? 1;
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 1 || w > 1000)
      throw new InvalidOptionError('weight', weight, 'an integer from 1 to 1000');
    this.#weight = w;
    this.#names = checkNames(names);
    this.#nameSet = new Set(this.#names);
    this.#memberPrefix = `${MEMBER_PREFIX}${this.#group}:`;
    const idHash = createHash('sha256').update(this.#options.id).digest('hex').slice(0, 16);
    this.#memberName = `${this.#memberPrefix}${this.#weight}:${idHash}`;
    this.#bounds = sessionBounds(this.#options);
    this.#subscribers = new Subscribers((error) => this.#options.logger.error({ err: error }, 'drizzle-leader: a group listener threw'));
  }

  /** This member's id: `leader_id` of every lease it holds and of its member row. */
  get id(): string {
    return this.#options.id;
  }

  /** The names this member campaigns for, in the order given. */
  get names(): readonly string[] {
    return [...this.#names];
  }

  get stats(): GroupStats {
    return structuredClone(this.#stats);
  }

  /** The live members this member saw at its last heartbeat (itself included when eligible), by id. */
  get members(): readonly Member[] {
    return [...this.#members];
  }

  /** Whether this member leads `name` right now: the name's trust window is checked at every call. */
  leads(name: string): boolean {
    return this.#trusted(name) !== null;
  }

  /** The lease of `name` if this member leads it now, else null (same check as `leads`). */
  lease(name: string): Lease | null {
    return this.#trusted(name)?.lease ?? null;
  }

  /** Every leadership this member holds now, name → lease, each trust window checked. */
  leaderships(): ReadonlyMap<string, Lease> {
    const result = new Map<string, Lease>();
    for (const name of [...this.#held.keys()]) {
      const held = this.#trusted(name);
      if (held) result.set(name, held.lease);
    }
    return result;
  }

  /**
   * Starts campaigning. Resolves after the first heartbeat and election batch, so `leads()` is
   * meaningful right after; rejects (and stops) on what retrying cannot fix (table missing,
   * wrong password, ...). An ineligible member (`eligible: false`) sends nothing.
   */
  start(): Promise<void> {
    if (this.#stopped) return Promise.reject(new ElectorStoppedError());
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    this.#phase = 'running';
    if (!this.#eligible) return;
    // Hints only speed things up, but a member that joins is handed names through them: wait
    // (briefly, bounded) for LISTEN so the first handovers are not missed.
    await settledWithin(this.#listen(), LISTEN_READY_WAIT_MS);
    const first = deferred<unknown>();
    this.#loop = this.#run(first.resolve);
    const error = await first.promise;
    if (isFatal(error)) {
      await this.stop();
      throw error;
    }
  }

  /**
   * Steps down from every name at once (task signals abort, `leads()` turns false); keeps
   * renewing the leases while each name's `runWhileLeader` tasks and lease-checked transactions
   * finish (up to `drainTimeout`, logged with what overran), then leaves the membership and
   * resigns every leadership with DELETE + NOTIFY, so the others take over within milliseconds.
   * Idempotent; resolves within `drainTimeout` plus one ttl in every state.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#stopRequested = true;
    // A leaving member acts on no notification. Let LISTEN go before anything is resigned, so
    // its own resignations (one NOTIFY per name) do not come back to wake this process while
    // the others elect. Waits for nothing on the network.
    this.#unlisten?.().catch(() => {});
    this.#unlisten = null;
    for (const name of [...this.#held.keys()]) this.#stepDown(name, 'stopped');
    // Leave the membership now, even while leading nothing, so the others rebalance at once.
    this.#wakeup.wake();
    // The loop keeps running meanwhile: it renews the draining leases and releases each one as its drain ends.
    await Promise.all([...this.#draining.values()].map((d) => d.finished));
    for (const end of [...this.#runEnders]) end();
    this.#phase = 'stopping';
    if (this.#deferredWake) clearTimeout(this.#deferredWake);
    this.#wakeup.wake();
    await settledWithin(this.#loop, this.#options.ttl);
    this.#clearTrustTimer();
    this.#phase = 'stopped';
    await settledWithin(this.#subscribers.drained(), 1_000);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Receives every transition of every name, in order, with the name. Returns an unsubscribe function. */
  subscribe(listener: GroupListener): () => void {
    return this.#subscribers.add(listener);
  }

  /**
   * Calls `task(name, signal, lease)` each time this member gains a name (and at once for the
   * names it leads now); `signal` aborts when that leadership ends. On `stop()`, a rebalancing,
   * `removeName()` and a requested resignation, the name's lease is given up only after its run
   * has returned (up to `drainTimeout`), so a successor never runs alongside it.
   *
   * Returns the single elector's handle: `cancel()` stops further runs and aborts the current
   * ones; `done` resolves once the runs are over (cancelled, or the group stopped) and every run
   * has returned; `running` tells whether one is in progress.
   */
  runWhileLeader(task: GroupTask, options: { label?: string } = {}): GroupTaskHandle {
    if (this.#stopped) throw new ElectorStoppedError();
    if (typeof task !== 'function') throw new InvalidOptionError('task', task, 'a function (name, signal, lease) => ...');
    const runs = new TaskRuns(this.#work, this.#options.logger, TaskRuns.label(task, options.label));
    const launch = (name: string, held: Held) =>
      runs.launch(held.lease.term, held.controller.signal, { name }, (signal) => task(name, signal, held.lease));
    runs.onEnd(
      this.#onTransition((event) => {
        if (event.type !== 'gained') return;
        const held = this.#held.get(event.name);
        if (held && held.lease.term === event.term) launch(event.name, held);
      }),
    );
    const end = () => runs.end();
    this.#runEnders.add(end);
    runs.onEnd(() => this.#runEnders.delete(end));
    for (const [name] of this.leaderships()) launch(name, this.#held.get(name)!);
    return runs.handle;
  }

  /**
   * Runs `fn(tx, lease, signal)` in a Drizzle transaction that commits only if this member's
   * exact term of `name` holds the lease: the single elector's `transaction()`, per name. The
   * database checks the term when the transaction takes its lock (FOR KEY SHARE), before `fn`
   * runs, and no other term of `name` can be elected until it commits or rolls back; this
   * member's batched renewals set only `expires_at` and are not held up by it.
   *
   * Throws `LeadershipLostError` without running `fn` when this member does not lead `name`
   * (`not-leader`) or the database no longer holds its term (`lease-not-held`), and when the
   * transaction outlived `config.timeout` (`timed-out`, rolled back). A handover of `name`
   * (stop, rebalancing, removal, requested resignation) waits for it, up to `drainTimeout`.
   */
  async transaction<T>(name: string, fn: LeaseTransactionFn<TDb, T>, config: LeaseTransactionConfig = {}): Promise<T> {
    const { table, id } = this.#options;
    const prepared = prepareLeaseTransaction(this.#db, fn, config, this.#options, 'group.transaction()');
    await this.#leaseKey.ensure(this.#db, table, this.#statementDeadlineMs());
    const held = this.#trusted(name);
    if (!held) throw new LeadershipLostError(name, null, 'not-leader');
    return runLeaseTransaction({
      db: this.#db,
      table,
      lease: held.lease,
      leaderId: id,
      signal: held.controller.signal,
      timeoutMs: prepared.timeoutMs,
      lockDeadlineMs: this.#statementDeadlineMs(),
      guard: prepared.driver.guardTransaction,
      checkOut: prepared.driver.checkOut,
      exclusive: prepared.driver.exclusiveTransactions,
      work: this.#work,
      end: (item) => this.#endTransaction(name, item),
      sessionEndSafe: prepared.driver.sessionEndSafe,
      connectionGone: prepared.driver.connectionGone,
      config: prepared.config,
      fn,
    });
  }

  /**
   * The lighter form of `transaction()` for one write: a condition for its `where` that is true
   * only while this member's term of `name` holds the lease at the statement's start, and that
   * keeps any other term of `name` from being elected until the write's transaction ends.
   * Throws `LeadershipLostError` when this member does not lead `name` now.
   */
  leaseHeld(name: string): SQL {
    const held = this.#trusted(name);
    if (!held) throw new LeadershipLostError(name, null, 'not-leader');
    return leaseHeldSql(this.#options.table, { name, leaderId: this.#options.id, term: held.lease.term });
  }

  /** Replaces the set of names: names removed are resigned (reason `removed`), names added are campaigned for at once. */
  setNames(names: readonly string[]): void {
    const next = checkNames(names);
    const keep = new Set(next);
    for (const name of this.#names) {
      if (keep.has(name)) continue;
      this.#stepDown(name, 'removed');
      this.#due.delete(name);
      this.#peekAt.delete(name);
      this.#known.delete(name);
    }
    this.#names = next;
    this.#nameSet = new Set(next);
    this.#assignment = null;
    if (this.#running()) this.#reschedule();
    this.#wakeup.wake();
  }

  /** Adds one name; false if it was already in the set. */
  addName(name: string): boolean {
    checkElectionName('name', name);
    if (this.#nameSet.has(name)) return false;
    this.setNames([...this.#names, name]);
    return true;
  }

  /** Removes one name (resigning it if led); false if it was not in the set. */
  removeName(name: string): boolean {
    if (!this.#nameSet.has(name)) return false;
    this.setNames(this.#names.filter((n) => n !== name));
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // Transitions

  #now(): Instant {
    return readClock(this.#options.clock);
  }

  #running(): boolean {
    return this.#phase === 'running';
  }

  #onTransition(hook: (event: GroupEvent) => void): () => void {
    const wrapped = (event: GroupEvent) => hook(event);
    this.#transitionHooks.add(wrapped);
    return () => void this.#transitionHooks.delete(wrapped);
  }

  #emit(event: GroupEvent): void {
    for (const hook of [...this.#transitionHooks]) {
      try {
        hook(event);
      } catch (error) {
        this.#options.logger.error({ err: error, name: event.name }, 'drizzle-leader: a transition hook threw');
      }
    }
    this.#subscribers.emit(event);
  }

  /** The leadership of `name` if still trusted; steps it down (synchronously) if its window has passed. */
  #trusted(name: string): Held | null {
    const held = this.#held.get(name);
    if (!held) return null;
    if (!held.trust.trusted(this.#now())) {
      this.#stepDown(name, 'trust-expired');
      return null;
    }
    return held;
  }

  #becomeLeader(record: LeaderInfo, startedAt: Instant): void {
    const trust = TrustWindow.start(startedAt, this.#options);
    const lease: Lease = Object.freeze({
      name: record.name,
      term: record.term,
      leaderId: record.leaderId,
      electedAt: record.electedAt,
      expiresAt: record.expiresAt,
    });
    // Until it is renewed or released, this term may be alive in the database.
    this.#unreleased.set(record.name, { term: record.term, until: this.#now().monotonic + this.#options.ttl });
    if (!trust.trusted(this.#now()) || !this.#running() || this.#stopRequested || !this.#nameSet.has(record.name)) return;
    this.#unreleased.delete(record.name);
    this.#held.set(record.name, { lease, trust, controller: new AbortController() });
    this.#due.delete(record.name);
    this.#peekAt.delete(record.name);
    this.#known.delete(record.name);
    this.#stats.gained++;
    // A new leadership is renewed with the others at the next renewal turn, at the latest one interval away.
    this.#renewDueAt = Math.min(this.#renewDueAt, startedAt.monotonic + this.#options.renewInterval);
    this.#ensureTrustTimer(trust);
    this.#emit({ type: 'gained', name: record.name, term: record.term, lease });
  }

  /** leader → follower for one name, locally and at once; the loop releases the term unless another holds the row now. */
  #stepDown(name: string, reason: GroupLossReason): void {
    const held = this.#held.get(name);
    if (!held) return;
    this.#held.delete(name);
    this.#stats.lost++;
    held.controller.abort(new DrizzleLeaderError(`leadership of ${name} term ${held.lease.term} ended: ${reason}`));
    this.#emit({ type: 'lost', name, term: held.lease.term, reason });
    if (ORDERED.has(reason) && this.#work.pending(held.lease.term).length > 0) {
      this.#drain(name, held);
    } else if (reason !== 'renewal-denied' && reason !== 'term-replaced') {
      this.#unreleased.set(name, { term: held.lease.term, until: this.#now().monotonic + this.#options.ttl });
    }
    const holdOff = reason === 'resigned' || reason === 'rebalanced' ? Math.min(this.#options.renewInterval, 1_000) : 0;
    if (this.#nameSet.has(name)) this.#due.set(name, this.#now().monotonic + holdOff);
    // The trust timer is left armed: firing early for a name no longer held only re-arms it.
    this.#wakeup.wake();
  }

  /**
   * The ordered handover of one name, begun after its leadership ended for every reader: the
   * loop renews the lease while the term's work drains; then the term is released like any other.
   */
  #drain(name: string, held: Held): void {
    const { drainTimeout, logger } = this.#options;
    const term = held.lease.term;
    const cut = deferred();
    const entry: Draining = { lease: held.lease, trust: held.trust, cut: () => cut.resolve(), finished: Promise.resolve() };
    this.#draining.set(name, entry);
    entry.finished = this.#work.drain(term, drainTimeout, cut.promise).then((overran) => {
      if (this.#draining.get(name) !== entry) return;
      giveUpOverrun(logger, overran, { name, term, drainTimeout });
      this.#draining.delete(name);
      this.#unreleased.set(name, { term, until: this.#now().monotonic + this.#options.ttl });
      this.#releaseRetryAt = 0;
      this.#wakeup.wake();
    });
  }

  /** A draining leadership ended on its own (denied, replaced, untrusted): stop waiting; release it only if it may still be ours. */
  #endDrain(name: string, mayBeOurs: boolean): void {
    const entry = this.#draining.get(name);
    if (!entry) return;
    this.#draining.delete(name);
    entry.cut();
    if (mayBeOurs) this.#unreleased.set(name, { term: entry.lease.term, until: this.#now().monotonic + this.#options.ttl });
    this.#wakeup.wake();
  }

  #endTransaction(name: string, item: WorkItem): Promise<void> {
    return endOverrunningTransaction({
      leadDb: this.#leadDb,
      db: this.#db,
      item,
      work: this.#work,
      ttl: this.#options.ttl,
      deadlineMs: this.#statementDeadlineMs(),
      monotonic: () => this.#now().monotonic,
      logger: this.#options.logger,
      name,
    });
  }

  /**
   * A leadership was just gained: the armed timer already fires in time unless this window ends
   * first. Re-arming at every gain would cost a pass over every held name per name won.
   */
  #ensureTrustTimer(trust: TrustWindow): void {
    const now = this.#now();
    if (this.#trustTimer && this.#trustTimerAt <= now.monotonic + trust.remaining(now)) return;
    this.#armTrustTimer();
  }

  /** One timer for the earliest trust deadline: leaderships end on time even if nobody calls `leads()`. */
  #armTrustTimer(): void {
    this.#clearTrustTimer();
    if (this.#held.size === 0) return;
    const now = this.#now();
    let earliest = Number.POSITIVE_INFINITY;
    for (const held of this.#held.values()) earliest = Math.min(earliest, held.trust.remaining(now));
    this.#trustTimerAt = now.monotonic + Math.max(0, earliest);
    this.#trustTimer = setTimeout(() => {
      this.#trustTimer = null;
      for (const name of [...this.#held.keys()]) this.#trusted(name);
      this.#armTrustTimer();
    }, Math.max(0, earliest) + 1);
    this.#trustTimer.unref?.();
  }

  #clearTrustTimer(): void {
    if (this.#trustTimer) clearTimeout(this.#trustTimer);
    this.#trustTimer = null;
  }

  // ---------------------------------------------------------------------------------------
  // The loop: the only place that talks to the lease table

  async #run(firstDone: (error: unknown) => void): Promise<void> {
    let first = true;
    const attempted = (error: unknown) => {
      if (first) firstDone(error);
      first = false;
    };
    let release = async () => {};
    let lead: LeaderDatabase | null = null;
    try {
      const { logger } = this.#options;
      const [electing, leading] = await Promise.all([
        // Its own election connection: see acquireStatementDatabase.
        acquireStatementDatabase(this.#db, this.#bounds, logger, 'elect', { unshared: true }),
        acquireStatementDatabase(this.#db, this.#bounds, logger, 'lead'),
      ]);
      release = () => Promise.all([electing.release(), leading.release()]).then(() => {});
      this.#resetConnections = () => {
        electing.reset();
        leading.reset();
      };
      lead = leading.db;
      this.#leadDb = leading.db;
      const opening = electing.error ?? leading.error;
      if (opening) {
        const failure = this.#failed(opening, 'election');
        attempted(failure);
        if (isFatal(failure)) return;
        await this.#sleep(this.#errorBackoff());
      }
      for (let turn = 1; this.#running(); turn++) {
        const error = await this.#turn(electing.db, leading.db);
        attempted(error);
        // start() rejects with it; later, even these are retried (a table restored, a password fixed).
        if (turn === 1 && isFatal(error)) return;
        if (!this.#running()) break;
        await this.#sleep(this.#nextWakeInMs(error));
      }
    } catch (error) {
      attempted(this.#failed(error, 'election'));
    } finally {
      attempted(undefined);
      if (lead) await this.#leave(lead);
      setTimeout(() => void release().catch(() => {}), CLOSE_DELAY_MS);
    }
  }

  /** One turn: heartbeat, renew, give up, elect, each only when due. Returns the first error, if any. */
  async #turn(electDb: LeaderDatabase, leadDb: LeaderDatabase): Promise<unknown> {
    let failure: unknown;
    const now = () => this.#now().monotonic;
    for (const name of [...this.#held.keys()]) this.#trusted(name);
    for (const [name, draining] of [...this.#draining]) if (!draining.trust.trusted(this.#now())) this.#endDrain(name, true);
    const leading = this.#held.size + this.#draining.size > 0;
    const heartbeatDue = !this.#left && this.#heartbeatDueAt <= now();
    // One statement renews every name and the membership: a heartbeat due in the second half of
    // the renew cycle brings the renewal forward, so the two run in step. A look a hint asks for
    // mid-cycle (a member joined or left) is the heartbeat alone: lighter, so the names it
    // reassigns are elected sooner; the next renewal brings the two back in step.
    const renewDue = leading && (this.#renewDueAt <= now() || (heartbeatDue && this.#renewDueAt - now() < this.#options.renewInterval / 2));
    // A leave heard but not yet confirmed: its names are elected first (once per leave heard),
    // the heartbeat that confirms the view right after, whatever the election's outcome. Not
    // when a renewal is due by its own schedule: an election can wait out its lock timeout (a
    // row another session is inserting), and a renewal never waits behind one.
    let early: unknown;
    if (this.#electBeforeLook && !(leading && this.#renewDueAt <= now()) && this.#running()) {
      this.#electBeforeLook = false;
      early = await this.#electDue(electDb);
    }
    if (renewDue) failure ??= await this.#renew(leadDb);
    else if (heartbeatDue) failure ??= await this.#heartbeat(leadDb);
    failure ??= early;
    this.#shedSurplus();
    // A stopping member leaves the membership in the same statement that releases its names
    // (even if stop() came while this turn was under way): the others then already assign its
    // names among themselves when each name's release arrives.
    if (this.#stopRequested && !this.#left) await this.#leaveMembership(leadDb);
    if (this.#unreleased.size > 0 && this.#releaseRetryAt <= now()) await this.#release(leadDb);
    if (!this.#running()) return failure;
    failure ??= await this.#electDue(electDb);
    return failure;
  }

  /** Elects the names due now: one batch, and the names kept apart after a lock timeout in statements of their own. */
  async #electDue(electDb: LeaderDatabase): Promise<unknown> {
    let failure: unknown;
    const now = () => this.#now().monotonic;
    const due = this.#dueNames(now());
    if (due.length === 0) return failure;
    // Names of a batch that waited out its lock timeout go in smaller statements of their own,
    // a few per turn, until the one that blocks is alone; the rest go in one batch as always.
    // The split lasts one ttl: then the names go back to the batch (a blocking INSERT still open splits it again).
    if (this.#isolated.length > 0 && now() >= this.#isolatedUntil) this.#isolated = [];
    const set = new Set(due);
    const isolated = this.#isolated.map((g) => g.filter((n) => set.has(n))).filter((g) => g.length > 0);
    const apart = new Set(this.#isolated.flat());
    const batch = due.filter((n) => !apart.has(n));
    if (batch.length > 0) failure ??= await this.#elect(electDb, batch);
    for (const group of isolated.slice(0, MAX_ISOLATED_PER_TURN)) {
      if (!this.#running()) break;
      failure ??= await this.#elect(electDb, group);
    }
    return failure;
  }

  async #heartbeat(db: LeaderDatabase): Promise<unknown> {
    const { table, id, ttl, renewInterval } = this.#options;
    const startedAt = this.#now().monotonic;
    this.#stats.statements.heartbeats++;
    try {
      const input = this.#memberInput();
      const view = await withDeadline(
        this.#notifying((channel) => heartbeat(db, table, { ...input, channel, leaderId: id, ttlMs: ttl })),
        this.#statementDeadlineMs(),
        () => 'membership heartbeat did not answer in time',
      );
      this.#heartbeatDone(startedAt, renewInterval);
      this.#consecutiveErrors = 0;
      this.#adoptMembers(view.members);
      this.#peeked(input.peek, view.free, this.#now().monotonic);
      return undefined;
    } catch (error) {
      this.#stats.statements.failed++;
      this.#heartbeatDone(startedAt, this.#errorBackoff());
      return this.#failed(error, 'election');
    }
  }

  #memberInput() {
    return { memberName: this.#memberName, prefix: this.#memberPrefix, channel: this.#options.channel, peek: this.#peeksDue() };
  }

  /** A name held by a live other member is next looked at in passing, after 3 ttl (no election until then). */
  #peekLater(name: string, now: number): void {
    this.#due.delete(name);
    this.#peekAt.set(name, now + 3 * this.#options.ttl);
  }

  /** The peeks the next heartbeat or renewal carries: those due by then. */
  #peeksDue(): string[] {
    if (this.#stopRequested) return [];
    const by = this.#now().monotonic + this.#options.renewInterval / 2;
    const due: string[] = [];
    for (const [name, at] of this.#peekAt) if (at <= by && !this.#held.has(name) && !this.#draining.has(name)) due.push(name);
    return due;
  }

  /** What the peeks found: names still held are looked at again later; a free one is due for an election. */
  #peeked(asked: readonly string[], free: readonly string[], now: number): void {
    const freed = new Set(free);
    const assignment = this.#assigned();
    for (const name of asked) {
      if (!this.#peekAt.has(name) || !this.#nameSet.has(name)) continue;
      if (!freed.has(name)) {
        this.#peekAt.set(name, now + 3 * this.#options.ttl);
        continue;
      }
      // Free with nobody told: its owner by the balance goes first, like after a `resigned` hint.
      this.#peekAt.delete(name);
      this.#known.delete(name);
      const at = assignment.get(name) === this.#options.id ? now : now + this.#graceMs();
      this.#due.set(name, Math.min(this.#due.get(name) ?? Number.POSITIVE_INFINITY, at));
    }
  }

  /** What a heartbeat read: the live member rows. A member that has left no longer counts itself. */
  #adoptMembers(rows: readonly MemberRow[]): void {
    if (this.#left) return;
    const confirming = this.#provisionalView;
    const heard = this.#viewKey;
    this.#provisionalView = false;
    this.#setView(rows.flatMap((row) => memberOf(row.name, row.leaderId, this.#memberPrefix)));
    // The database agrees with the leave a hint announced: shed the surplus at once, as for any announced change.
    if (confirming && this.#viewKey === heard)
      this.#viewSince = Math.min(this.#viewSince, this.#now().monotonic - this.#options.renewInterval);
    this.#lookAtExpiries(rows);
  }

  /**
   * A member whose row has not been renewed since this member last read it (its stored
   * `expires_at` is the same) may have crashed, frozen or been cut off: if its row expires
   * before this member's next heartbeat, that heartbeat comes when it expires instead, and the
   * names it held are elected then, not up to an interval later. Members need not share timings,
   * so "not renewed" is judged from the row itself, never from this member's own ttl and
   * interval; and from the stored value, never from a local estimate of it (read time + time
   * left moves with each answer's latency: under load it moved by more than any fixed allowance
   * and the look was skipped). A member on time renews its row long before it expires: no look,
   * no statement. The time left is the server's (counted from the statement, so by the local
   * clock a look can only come late, never early); a look that still finds the row alive (a
   * member merely late) costs one heartbeat.
   */
  #lookAtExpiries(rows: readonly MemberRow[]): void {
    const now = this.#now().monotonic;
    const seen = new Map<string, string>();
    for (const row of rows) {
      if (row.leaderId === this.#options.id) continue;
      seen.set(row.leaderId, row.expiresAt);
      if (this.#memberExpiry.get(row.leaderId) === row.expiresAt) {
        this.#heartbeatDueAt = Math.min(this.#heartbeatDueAt, now + Math.max(0, row.remainingMs) + EXPIRY_LOOK_MS);
      }
    }
    this.#memberExpiry = seen;
  }

  /** A hint asks to look at the membership now. */
  #askHeartbeat(): void {
    const now = this.#now().monotonic;
    this.#heartbeatAskedAt = now;
    this.#heartbeatDueAt = Math.min(this.#heartbeatDueAt, now);
  }

  /** A hint asks for a renewal now (a requested resignation is read with it). */
  #askRenewal(): void {
    const now = this.#now().monotonic;
    this.#renewAskedAt = now;
    this.#renewDueAt = now;
  }

  /** A heartbeat sent at `startedAt` is done: the next is due after `delay`, or at once if a hint asked for one meanwhile. */
  #heartbeatDone(startedAt: number, delay: number): void {
    this.#heartbeatDueAt = this.#heartbeatAskedAt >= startedAt ? this.#heartbeatAskedAt : startedAt + delay;
  }

  #renewDone(startedAt: number, delay: number): void {
    this.#renewDueAt = this.#renewAskedAt >= startedAt ? this.#renewAskedAt : startedAt + delay;
  }

  /** Adopts a membership view; a changed view restarts the hysteresis clock and makes newly assigned free names due. */
  #setView(members: Member[]): void {
    if (this.#eligible && !members.some((m) => m.id === this.#options.id)) members.push({ id: this.#options.id, weight: this.#weight });
    members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const key = members.map((m) => `${m.id}\u0000${m.weight}`).join('\u0001');
    if (key === this.#viewKey) return;
    const now = this.#now().monotonic;
    const before = new Set(this.#members.map((m) => m.id));
    const after = new Set(members.map((m) => m.id));
    const changed = [...after].filter((id) => !before.has(id)).concat([...before].filter((id) => !after.has(id)));
    for (const [id, at] of this.#announced) if (now - at > this.#options.ttl) this.#announced.delete(id);
    // A join or a graceful leave is announced by its own INSERT or DELETE (NOTIFY): it is no
    // flap, so the surplus goes at once and the newcomer gets its share within about one round
    // trip. A view changed only by rows expiring or reappearing (a member late with its
    // heartbeat) still waits one interval: that is what the hysteresis is for.
    const announced = before.size > 0 && changed.length > 0 && changed.every((id) => this.#announced.has(id));
    for (const id of changed) this.#announced.delete(id);
    // A periodic heartbeat can see a join before its NOTIFY arrives: the NOTIFY then settles the view (#onNotification).
    this.#unsettled = announced ? new Set() : new Set(changed);
    this.#members = members;
    this.#viewKey = key;
    this.#viewSince = announced ? now - this.#options.renewInterval : now;
    this.#assignment = null;
    this.#reschedule();
  }

  #assigned(): Map<string, string> {
    this.#assignment ??= assign(this.#names, this.#members);
    return this.#assignment;
  }

  #isLiveMember(id: string): boolean {
    return this.#members.some((m) => m.id === id);
  }

  /** After a change of view or names: when each free name is next worth an election. */
  #reschedule(): void {
    const now = this.#now().monotonic;
    const assignment = this.#assigned();
    for (const name of this.#names) {
      if (this.#held.has(name)) continue;
      const known = this.#known.get(name);
      const current = this.#due.get(name) ?? Number.POSITIVE_INFINITY;
      if (assignment.get(name) === this.#options.id) {
        if (!known || !this.#isLiveMember(known.leaderId)) this.#due.set(name, Math.min(current, now));
      } else if (known && !this.#isLiveMember(known.leaderId)) {
        this.#due.set(name, Math.min(current, Math.max(now, known.expiresAt) + this.#graceMs()));
      } else if (!known && current === Number.POSITIVE_INFINITY && !this.#peekAt.has(name)) {
        // Never looked at: its assigned owner goes first; this member's next heartbeat or renewal
        // (within one interval) looks in passing, and only a name found free is elected.
        this.#peekAt.set(name, now);
      }
    }
  }

  /** How long a name assigned to someone else must stay free before this member takes it anyway. */
  #graceMs(): number {
    return Math.min(this.#options.renewInterval, 1_000) * (0.5 + Math.random() * 0.5);
  }

  async #renew(db: LeaderDatabase): Promise<unknown> {
    const { table, id, ttl, renewInterval } = this.#options;
    const leaderships: NameTerm[] = [...this.#held.entries(), ...this.#draining.entries()].map(([name, held]) => ({
      name,
      term: held.lease.term,
    }));
    const startedAt = this.#now();
    let earliestTrust = Number.POSITIVE_INFINITY;
    for (const held of [...this.#held.values(), ...this.#draining.values()])
      earliestTrust = Math.min(earliestTrust, held.trust.remaining(startedAt));
    this.#stats.statements.renewals++;
    const asked = new Map(leaderships.map((l) => [l.name, l.term]));
    // The membership rides along unless this member has left (stop): its row must stay gone.
    const member = this.#left ? null : this.#memberInput();
    let outcomes: Awaited<ReturnType<typeof renewManyWithHeartbeat>>['outcomes'];
    try {
      // No answer is worth waiting for past the earliest trust deadline among the names in the batch.
      const result = await withDeadline(
        this.#notifying((channel) =>
          renewManyWithHeartbeat(db, table, { leaderships, leaderId: id, ttlMs: ttl, member: member && { ...member, channel } }),
        ),
        Math.max(1, earliestTrust),
        () => 'renewal did not answer within the trust window',
      );
      outcomes = result.outcomes;
      if (member) {
        this.#heartbeatDone(startedAt.monotonic, renewInterval);
        this.#adoptMembers(result.members);
        this.#peeked(member.peek, result.free, this.#now().monotonic);
      }
    } catch (error) {
      this.#stats.statements.failed++;
      this.#renewDone(startedAt.monotonic, this.#errorBackoff());
      if (member) this.#heartbeatDone(startedAt.monotonic, this.#errorBackoff());
      return this.#failed(error, 'renewal');
    }
    this.#consecutiveErrors = 0;
    let skipped = false;
    for (const outcome of outcomes) {
      const draining = this.#draining.get(outcome.name);
      if (draining && draining.lease.term === asked.get(outcome.name)) {
        if (outcome.kind === 'skipped') skipped = true;
        else if (outcome.kind === 'denied') this.#endDrain(outcome.name, false);
        else if (outcome.lease.term !== draining.lease.term) {
          // The row was gone and the renewal inserted a new term: the drained leadership is over, and the new term is not ours to keep.
          this.#endDrain(outcome.name, false);
          this.#unreleased.set(outcome.name, { term: outcome.lease.term, until: this.#now().monotonic + ttl });
        } else {
          draining.trust = TrustWindow.start(startedAt, this.#options);
          draining.lease = Object.freeze({ ...draining.lease, expiresAt: outcome.lease.expiresAt });
        }
        continue;
      }
      const held = this.#held.get(outcome.name);
      if (!held || held.lease.term !== asked.get(outcome.name)) {
        // Stepped down while the batch was in flight: what it renewed or inserted is not ours to keep.
        if (outcome.kind === 'renewed')
          this.#unreleased.set(outcome.name, { term: outcome.lease.term, until: this.#now().monotonic + ttl });
        continue;
      }
      if (outcome.kind === 'skipped') {
        skipped = true;
      } else if (outcome.kind === 'denied') {
        this.#stepDown(outcome.name, 'renewal-denied');
      } else if (outcome.lease.term !== held.lease.term) {
        this.#stepDown(outcome.name, 'term-replaced');
        this.#becomeLeader(outcome.lease, startedAt);
      } else {
        const trust = TrustWindow.start(startedAt, this.#options);
        this.#held.set(outcome.name, { ...held, trust, lease: Object.freeze({ ...held.lease, expiresAt: outcome.lease.expiresAt }) });
        if (outcome.lease.resignRequestedAt) {
          this.#options.logger.info({ name: outcome.name, term: held.lease.term }, 'drizzle-leader: resignation requested');
          this.#stepDown(outcome.name, 'resigned');
        }
      }
    }
    // A name whose row someone else has locked is tried again soon; its trust window decides if it is lost.
    this.#renewDone(startedAt.monotonic, skipped ? Math.min(renewInterval, 250) : renewInterval);
    this.#armTrustTimer();
    return undefined;
  }

  /** Names this member leads that the balance gives to another live member: resigned once the view has held still one interval. */
  #shedSurplus(): void {
    // A view only a hint has changed sheds nothing: the heartbeat that confirms it comes first.
    if (!this.#running() || this.#stopRequested || this.#members.length < 2 || this.#provisionalView) return;
    if (this.#now().monotonic - this.#viewSince < this.#options.renewInterval) return;
    const assignment = this.#assigned();
    for (const name of [...this.#held.keys()]) {
      const owner = assignment.get(name);
      if (owner !== undefined && owner !== this.#options.id && this.#isLiveMember(owner)) this.#stepDown(name, 'rebalanced');
    }
  }

  /** Resigns every term this member stepped down from (one statement); rows another session has locked are retried. */
  async #release(db: LeaderDatabase): Promise<void> {
    const { table, id } = this.#options;
    const now = this.#now().monotonic;
    for (const [name, held] of this.#unreleased) if (now >= held.until) this.#unreleased.delete(name);
    const leaderships = [...this.#unreleased.entries()].map(([name, { term }]) => ({ name, term }));
    if (leaderships.length === 0) return;
    this.#stats.statements.resignations++;
    try {
      const { skipped } = await withDeadline(
        this.#notifying((ch) => resignMany(db, table, { leaderships, leaderId: id, channel: ch })),
        this.#statementDeadlineMs(),
        () => 'resignation did not answer in time',
      );
      this.#settleReleased(leaderships, skipped, now);
    } catch (error) {
      this.#stats.statements.failed++;
      this.#releaseRetryAt = now + this.#errorBackoff();
      this.#noteUnanswered(error);
      this.#options.logger.warn({ err: error }, 'drizzle-leader: could not release leases; they will expire on their own');
    }
  }

  #unisolate(names: ReadonlySet<string>): void {
    this.#isolated = this.#isolated.map((g) => g.filter((n) => !names.has(n))).filter((g) => g.length > 0);
  }

  /** The names of a statement that waited out its lock timeout: split into up to ISOLATE_PARTS groups (a name alone stays alone). */
  #isolate(names: readonly string[]): void {
    const failed = new Set(names);
    this.#unisolate(failed);
    this.#isolatedUntil = this.#now().monotonic + this.#options.ttl;
    const parts = Math.min(ISOLATE_PARTS, names.length);
    for (let i = 0; i < parts; i++) {
      const part = names.filter((_, j) => j % parts === i);
      if (part.length > 0) this.#isolated.push(part);
    }
  }

  /** After a resignation: released, or not there any more (expired and taken, or never committed), is done; a row another session has locked is tried again, until its lease has expired anyway. */
  #settleReleased(leaderships: readonly NameTerm[], skipped: readonly string[], now: number): void {
    for (const { name, term } of leaderships) {
      if (this.#unreleased.get(name)?.term === term && !skipped.includes(name)) this.#unreleased.delete(name);
    }
    this.#releaseRetryAt = now + Math.min(this.#options.renewInterval, 250);
  }

  #dueNames(now: number): string[] {
    const result: string[] = [];
    if (this.#stopRequested) return result;
    for (const name of this.#names) {
      if (this.#held.has(name) || this.#draining.has(name) || this.#unreleased.has(name)) continue;
      if ((this.#due.get(name) ?? Number.POSITIVE_INFINITY) <= now) result.push(name);
    }
    return result;
  }

  async #elect(db: LeaderDatabase, names: string[]): Promise<unknown> {
    const { table, id, ttl, renewInterval } = this.#options;
    const startedAt = this.#now();
    this.#stats.statements.elections++;
    let outcomes: Awaited<ReturnType<typeof electMany>>;
    const work = this.#notifying((ch) => electMany(db, table, { names, leaderId: id, ttlMs: ttl, channel: ch }));
    try {
      outcomes = await withDeadline(work, this.#statementDeadlineMs(), () => 'election did not answer in time');
    } catch (error) {
      this.#stats.statements.failed++;
      // A win that arrives after the deadline is nobody's: release it.
      work
        .then((late) => {
          for (const o of late) if (o.won) this.#unreleased.set(o.name, { term: o.lease.term, until: this.#now().monotonic + ttl });
          this.#wakeup.wake();
        })
        .catch(() => {});
      const backoff = this.#errorBackoff();
      for (const name of names) this.#due.set(name, startedAt.monotonic + backoff);
      // A row of the batch is being written by another session's open transaction (an
      // uncommitted INSERT cannot be skipped the way a locked row is): isolate it.
      if (errorCode(error) === '55P03') this.#isolate(names);
      return this.#failed(error, 'election');
    }
    this.#consecutiveErrors = 0;
    if (this.#isolated.length > 0) this.#unisolate(new Set(names));
    const now = this.#now().monotonic;
    const assignment = this.#assigned();
    for (const outcome of outcomes) {
      if (outcome.won) {
        this.#becomeLeader(outcome.lease, startedAt);
        continue;
      }
      const holder = outcome.holder;
      const mine = assignment.get(outcome.name) === id;
      if (!holder) {
        // Locked or changing under a concurrent election: look again shortly.
        this.#due.set(outcome.name, now + Math.min(renewInterval, 100) + Math.random() * 50);
        continue;
      }
      const expiresAt = now + Math.max(0, holder.remainingMs);
      const freedAt = this.#freed.get(outcome.name) ?? Number.NEGATIVE_INFINITY;
      if (freedAt >= startedAt.monotonic) {
        // Released while this statement ran, so its snapshot is already stale: the hint's schedule holds.
        this.#due.set(outcome.name, mine ? now : freedAt + renewInterval + this.#graceMs());
        continue;
      }
      this.#known.set(outcome.name, { leaderId: holder.leaderId, expiresAt });
      const jitter = Math.random() * Math.min(50, ttl / 20);
      if (mine) {
        // Ours by the balance: its holder hands it over (NOTIFY wakes us); look each interval in case that hint is lost.
        this.#due.set(outcome.name, Math.min(expiresAt + jitter, now + renewInterval));
      } else if (this.#isLiveMember(holder.leaderId)) {
        // A live member renews it; a change of membership reschedules it.
        this.#peekLater(outcome.name, now);
      } else {
        this.#due.set(outcome.name, expiresAt + jitter + this.#graceMs());
      }
    }
    return undefined;
  }

  /** Last act of the loop: leave the membership (if not yet), then resign every term still held (each one statement). */
  async #leave(db: LeaderDatabase): Promise<void> {
    if (!this.#left) await this.#leaveMembership(db);
    this.#releaseRetryAt = 0;
    if (this.#unreleased.size > 0) await this.#release(db);
  }

  /**
   * Deletes this member's row with a NOTIFY and, in the same statement, resigns every term
   * waiting to be released: the others reassign its names before they hear of any release.
   * Tried once; a member row left behind expires, and names not released are retried by #release.
   */
  async #leaveMembership(db: LeaderDatabase): Promise<void> {
    const { table, id } = this.#options;
    this.#left = true;
    const now = this.#now().monotonic;
    for (const [name, held] of this.#unreleased) if (now >= held.until) this.#unreleased.delete(name);
    const leaderships = [...this.#unreleased.entries()].map(([name, { term }]) => ({ name, term }));
    if (leaderships.length > 0) this.#stats.statements.resignations++;
    try {
      const { skipped } = await withDeadline(
        this.#notifying((ch) => leaveGroup(db, table, { memberName: this.#memberName, leaderId: id, channel: ch, leaderships })),
        this.#statementDeadlineMs(),
        () => 'leaving the group did not answer in time',
      );
      this.#settleReleased(leaderships, skipped, now);
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'drizzle-leader: could not leave the group; the member row will expire');
    }
  }

  /** When the loop is next due: the earliest of heartbeat, renewal, release and free names' elections. */
  #nextWakeInMs(error: unknown): number {
    const now = this.#now().monotonic;
    let next = this.#left ? Number.POSITIVE_INFINITY : this.#heartbeatDueAt;
    if (this.#held.size + this.#draining.size > 0) next = Math.min(next, this.#renewDueAt);
    if (this.#unreleased.size > 0) next = Math.min(next, Math.max(this.#releaseRetryAt, now));
    for (const name of this.#names) {
      if (this.#held.has(name) || this.#draining.has(name) || this.#unreleased.has(name) || this.#stopRequested) continue;
      next = Math.min(next, this.#due.get(name) ?? Number.POSITIVE_INFINITY);
    }
    // Only while the hysteresis is still running: once it has passed there is nothing to wait
    // for, and a deadline in the past would make every sleep zero (the loop would spin).
    const settles = this.#viewSince + this.#options.renewInterval;
    if (this.#members.length > 1 && this.#held.size > 0 && settles > now) next = Math.min(next, settles);
    const wait = Math.max(0, next - now);
    return error ? Math.max(wait, 10) : Math.min(wait, this.#options.renewInterval);
  }

  #sleep(ms: number): Promise<void> {
    return this.#running() ? this.#wakeup.sleep(ms) : Promise.resolve();
  }

  /** Runs a statement with its NOTIFY, or without it when the server's queue is full (lease/notify-fallback.ts). */
  #notifying<T>(statement: (channel: string | null) => Promise<T>): Promise<T> {
    return notifyingIfPossible(this.#options.channel, statement, (error) =>
      this.#options.logger.warn(
        { err: error, group: this.#group, channel: this.#options.channel },
        "drizzle-leader: the server's NOTIFY queue is full (a LISTEN session stuck in a transaction?); the group's statement went without its notifications, so the others learn by polling",
      ),
    );
  }

  #statementDeadlineMs(): number {
    const { statementTimeoutMs } = this.#bounds;
    return statementTimeoutMs + Math.min(MAX_CONNECT_TIMEOUT_MS, statementTimeoutMs);
  }

  #errorBackoff(): number {
    return backoffDelay(Math.max(0, this.#consecutiveErrors - 1), ERROR_BACKOFF);
  }

  #unanswered = 0;
  #noteUnanswered(error: unknown): void {
    const next = afterFailure(error, this.#unanswered);
    this.#unanswered = next.unanswered;
    if (next.reset) this.#resetConnections();
  }

  #failed(error: unknown, operation: 'election' | 'renewal'): unknown {
    this.#consecutiveErrors++;
    this.#noteUnanswered(error);
    const { table, logger } = this.#options;
    const { fatal, why } = classifyFailure(error, table);
    if (fatal) {
      logger.error({ err: fatal, group: this.#group }, `drizzle-leader: group ${operation} failed, and retrying cannot fix it`);
      return fatal;
    }
    logger.warn({ err: error, group: this.#group }, `drizzle-leader: group ${operation} failed; retrying${why}`);
    return error;
  }

  // ---------------------------------------------------------------------------------------
  // Notifications: hints that make names or the heartbeat due, nothing more

  #listen(): Promise<void> {
    const { listen, channel, renewInterval, logger } = this.#options;
    if (!listen) return Promise.resolve();
    const ready = deferred();
    this.#unlisten = subscribeChannel(this.#db, listen, channel, {
      heartbeatMs: renewInterval,
      notification: (payload) => this.#onNotification(payload),
      // (Re)connected: anything sent meanwhile is lost, so look at the database now.
      listening: () => {
        ready.resolve();
        this.#askHeartbeat();
        this.#reschedule();
        this.#wakeSoon();
      },
      disconnected: (error) => {
        ready.resolve();
        logger.warn({ err: error, channel }, 'drizzle-leader: LISTEN connection lost; reconnecting (the group polls meanwhile)');
      },
    });
    return this.#unlisten ? ready.promise : Promise.resolve();
  }

  #onNotification(payload: string): void {
    const notification = parseNotification(payload);
    if (!notification || !this.#running()) return;
    const { name, action, leaderId } = notification;
    const now = this.#now().monotonic;
    if (name.startsWith(this.#memberPrefix)) {
      if (leaderId !== this.#options.id) {
        if (leaderId && (action === 'elected' || action === 'resigned')) {
          this.#announced.set(leaderId, now);
          if (this.#unsettled.delete(leaderId) && this.#unsettled.size === 0)
            this.#viewSince = Math.min(this.#viewSince, now - this.#options.renewInterval);
        }
        if (action === 'resigned' && leaderId && this.#isLiveMember(leaderId) && memberOf(name, leaderId, this.#memberPrefix).length > 0) {
          // A graceful leave (its member row deleted in the statement that released its names):
          // drop the member from the view at once, so the names now assigned here are elected
          // before the heartbeat's round trip, not after it. A hint like any other: the heartbeat
          // right after the election confirms the view (then the surplus goes) or restores the
          // member (a forged leave costs an election that finds the names held; no name moves).
          this.#setView(this.#members.filter((m) => m.id !== leaderId));
          // Provisional until the heartbeat that follows the election: nothing is shed on a hint.
          this.#viewSince = now;
          this.#provisionalView = true;
          this.#electBeforeLook = true;
        }
        this.#askHeartbeat();
        this.#wakeSoon();
      }
      return;
    }
    if (!this.#nameSet.has(name) || leaderId === this.#options.id) return;
    if (action === 'request_resign') {
      if (this.#held.has(name)) {
        this.#askRenewal();
        this.#wakeSoon();
      }
      return;
    }
    if (this.#held.has(name)) return;
    if (action === 'elected' && leaderId) {
      this.#known.set(name, { leaderId, expiresAt: now + this.#options.ttl });
      if (this.#assigned().get(name) !== this.#options.id && this.#isLiveMember(leaderId)) this.#peekLater(name, now);
      return;
    }
    if (action !== 'resigned') return;
    this.#known.delete(name);
    this.#freed.set(name, now);
    const assignment = this.#assigned();
    const owner = assignment.get(name);
    if (owner === this.#options.id) {
      this.#due.set(name, Math.min(this.#due.get(name) ?? now, now));
      this.#wakeSoon();
    } else {
      // Its assigned owner goes first; if the resigner was that owner, it is probably leaving: look at the membership.
      // The owner answers a hint within milliseconds; a whole interval more before taking it
      // anyway keeps a slow owner from losing the name to a bystander (and a second handover).
      if (owner !== undefined && owner === leaderId) this.#askHeartbeat();
      const fallback = now + this.#options.renewInterval + this.#graceMs();
      this.#due.set(name, Math.min(this.#due.get(name) ?? Number.POSITIVE_INFINITY, fallback));
      this.#wakeSoon();
    }
  }

  /** Wakes the loop at once after a quiet spell; in a flood, at most every MIN_NOTIFIED_GAP_MS (the rest coalesce). */
  #wakeSoon(): void {
    if (this.#deferredWake) return;
    const now = this.#now().monotonic;
    const wait = this.#lastNotifiedWakeAt + MIN_NOTIFIED_GAP_MS - now;
    if (wait <= 0) {
      this.#lastNotifiedWakeAt = now;
      this.#wakeup.wake();
      return;
    }
    this.#deferredWake = setTimeout(() => {
      this.#deferredWake = null;
      this.#lastNotifiedWakeAt = this.#now().monotonic;
      if (this.#running()) this.#wakeup.wake();
    }, wait);
  }
}

/**
 * A member row's name → the member (weight and id hash are in the name; the id is the row's
 * leader_id). Exactly `<prefix><weight>:<16 hex>`: a group may contain ':', so group `jobs:2`'s
 * rows (`...jobs:2:1:<hash>`) also start with group `jobs`'s prefix and must not count there.
 */
function memberOf(name: string, leaderId: string, prefix: string): Member[] {
  const match = /^([1-9]\d{0,3}):[0-9a-f]{16}$/.exec(name.slice(prefix.length));
  const weight = Number(match?.[1]);
  return match && weight <= 1000 ? [{ id: leaderId, weight }] : [];
}

function checkNames(names: unknown): string[] {
  if (!Array.isArray(names)) throw new InvalidOptionError('names', names, 'an array of election names');
  const seen = new Set<string>();
  const duplicates = new Set<string>();
  names.forEach((name, i) => {
    checkElectionName(`names[${i}]`, name);
    if (seen.has(name as string)) duplicates.add(name as string);
    seen.add(name as string);
  });
  if (duplicates.size > 0) throw new DuplicateNameError([...duplicates]);
  return [...(names as string[])];
}

/** How many names each live member should lead, by id (for status tools and tests). */
export function groupQuotas(nameCount: number, members: readonly Member[]): Map<string, number> {
  return quotas(nameCount, members);
}

/**
 * Creates a member of an elector group: one loop campaigns for every name in `names`, sharing
 * them with the group's other live members. Options are validated here; nothing touches the
 * database until `start()`.
 */
export function createElectorGroup<TDb extends LeaderDatabase>(db: TDb, options: ElectorGroupOptions): ElectorGroup<TDb> {
  return new ElectorGroup(db, options);
}
