/**
 * A cluster for fault injection: a PostgreSQL server of its own (so it may be restarted), and
 * candidate processes (the demo's candidate program: elector + fenced "leader work"), each
 * behind its own fault proxy so one process can be partitioned, slowed or cut.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres, { type Sql } from 'postgres';
import { type CandidateMessage, type ParentMessage, wallNow } from '../../src/dev/candidate-protocol.js';
import { type EmbeddedServer, startEmbeddedServer } from '../../src/dev/embedded-server.js';
import { type ElectorStats, migrate, requestResign } from '../../src/index.js';
import { unprivilegedClient } from '../support/unprivileged.js';
import { type ActionRecord, checkHistory, checkLedger, type FenceRecord, type LedgerRecord } from './history.js';
import { FaultProxy } from './proxy.js';

const CANDIDATE_SCRIPT = resolve(import.meta.dirname, '../../src/dev/candidate.ts');

export interface ClusterOptions {
  candidates: number;
  ttl: number;
  renewInterval: number;
  safetyMargin: number;
  /** How often each candidate does leader work, in ms. */
  workMs?: number;
  /** How the leader writes (see src/dev/candidate.ts): fenced (default), transaction (lease-checked) or unchecked. */
  write?: 'fenced' | 'transaction' | 'unchecked';
  /** How long each ledger transaction stays open before its counter update, in ms. */
  holdMs?: number;
  /** The candidates' driver. Default postgres.js. */
  driver?: 'postgres.js' | 'node-postgres';
  /** Superuser URL of the cluster's server (set by `start`). */
  adminUrl?: string;
  /** The program each candidate process runs (same DEMO_* environment and IPC protocol). Default src/dev/candidate.ts. */
  script?: string;
  /** More environment for every candidate process (a fleet member's names, for one). */
  env?: Record<string, string>;
}

export interface Candidate {
  readonly id: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Null when the candidate connects straight to the server (external targets). */
  readonly proxy: FaultProxy | null;
  alive: boolean;
  frozen: boolean;
  /** How it ended, for a failure's description: an exit code or a signal. */
  exit?: string;
}

export interface Transition {
  pid: number;
  id: string;
  event: 'gained' | 'lost';
  term: number;
  reason?: string;
  at: number;
  /** The election name, from programs that campaign for many (fleet members). */
  name?: string;
}

export class Cluster {
  readonly name = `faults-${randomBytes(3).toString('hex')}`;
  readonly schema = `faults_${randomBytes(3).toString('hex')}`;
  readonly candidates = new Map<string, Candidate>();
  readonly transitions: Transition[] = [];
  readonly actions: ActionRecord[] = [];
  readonly faults: string[] = [];
  readonly errors: string[] = [];
  #listeners = new Set<() => void>();
  #stats = new Map<number, (stats: ElectorStats) => void>();
  #nextId = 1;

  private constructor(
    readonly options: Required<ClusterOptions>,
    /** The cluster's own server (restartable), or null when it runs against an external one. */
    readonly server: EmbeddedServer | null,
    /** Where candidates connect when there is no proxy in between. */
    readonly candidateUrl: string,
    readonly admin: Sql,
  ) {}

  /**
   * Starts a cluster on a server of its own, or, with `external`, against servers someone else
   * runs (a primary/standby pair): candidates then connect to `candidateUrl` without proxies.
   */
  static async start(options: ClusterOptions, external?: { adminUrl: string; candidateUrl: string }): Promise<Cluster> {
    const server = external ? null : await startEmbeddedServer();
    const adminUrl = external?.adminUrl ?? server!.url;
    const admin = postgres(adminUrl, { max: 4, onnotice: () => {}, backoff: () => 0.1 });
    const cluster = new Cluster(
      { workMs: 5, write: 'fenced', holdMs: 0, driver: 'postgres.js', script: CANDIDATE_SCRIPT, env: {}, ...options, adminUrl },
      server,
      external?.candidateUrl ?? server!.url,
      admin,
    );
    await migrate(drizzle(admin));
    await admin.unsafe(`create schema ${cluster.schema}`);
    await admin.unsafe(`create table ${cluster.schema}.fence (id int primary key, term bigint not null, writes bigint not null)`);
    await admin.unsafe(
      `create table ${cluster.schema}.actions (id bigserial primary key, at double precision not null, term bigint not null, pid int not null, accepted boolean not null)`,
    );
    await admin.unsafe(`insert into ${cluster.schema}.fence values (1, 0, 0)`);
    // The ledger of the lease-checked (and unchecked) writers: no fence column anywhere.
    await admin.unsafe(`create table ${cluster.schema}.counter (id int primary key, n bigint not null)`);
    await admin.unsafe(`insert into ${cluster.schema}.counter values (1, 0)`);
    await admin.unsafe(`create table ${cluster.schema}.ledger (n bigint primary key, term bigint not null, pid int not null)`);
    await Promise.all(Array.from({ length: options.candidates }, () => cluster.spawn()));
    return cluster;
  }

  /**
   * Starts one more candidate process, behind a fresh proxy on the cluster's own server (or
   * connected to `url`); resolves once it has campaigned once.
   */
  async spawn(url?: string): Promise<Candidate> {
    const id = `c${this.#nextId++}`;
    const proxy = this.server && !url ? new FaultProxy('127.0.0.1', this.server.port) : null;
    const candidateUrl = proxy ? `postgres://postgres:postgres@127.0.0.1:${await proxy.start()}/postgres` : (url ?? this.candidateUrl);
    const { ttl, renewInterval, safetyMargin, workMs, write, holdMs, driver, script, env } = this.options;
    const child = fork(script, [], {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        ...env,
        DEMO_URL: candidateUrl,
        DEMO_NAME: this.name,
        DEMO_SCHEMA: this.schema,
        DEMO_ID: id,
        DEMO_TIMINGS: `${ttl},${renewInterval},${safetyMargin}`,
        DEMO_WORK_MS: String(workMs),
        DEMO_WRITE: write ?? 'fenced',
        DEMO_TX_HOLD_MS: String(holdMs ?? 0),
        DEMO_DRIVER: driver ?? 'postgres.js',
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const candidate: Candidate = { id, pid: child.pid!, process: child, proxy, alive: true, frozen: false };
    this.candidates.set(id, candidate);
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    child.on('exit', (code, signal) => {
      candidate.alive = false;
      candidate.exit = signal ?? `code ${code}`;
      ready();
    });
    child.on('message', (message: CandidateMessage) => {
      if (message.type === 'ready') ready();
      else if (message.type === 'transition') this.transitions.push({ ...message, id });
      else if (message.type === 'action')
        this.actions.push({ at: message.at, term: message.term, pid: message.pid, accepted: message.accepted });
      else if (message.type === 'error') this.errors.push(`${id}: ${message.message}`);
      else if (message.type === 'stats') this.#stats.get(message.pid)?.(message.stats);
      for (const listener of [...this.#listeners]) listener();
    });
    await isReady;
    return candidate;
  }

  /** Candidates whose last transition says they lead (their own belief), among the living. */
  believedLeaders(): Candidate[] {
    const leading = new Map<number, number>();
    for (const t of this.transitions) {
      if (t.event === 'gained') leading.set(t.pid, t.term);
      else if (leading.get(t.pid) === t.term) leading.delete(t.pid);
    }
    return [...this.candidates.values()].filter((c) => c.alive && leading.has(c.pid));
  }

  leaderTerm(candidate: Candidate): number | undefined {
    return this.transitions.filter((t) => t.pid === candidate.pid && t.event === 'gained').at(-1)?.term;
  }

  /** Waits for the first transition after `from` that matches. */
  waitForTransition(predicate: (t: Transition) => boolean, withinMs: number, from = this.transitions.length): Promise<Transition> {
    return this.#waitFor(() => this.transitions.slice(from).find(predicate), withinMs, 'transition');
  }

  /** Waits until exactly one living candidate believes it leads (and not one of `exclude`). */
  async waitForSingleLeader(withinMs: number, exclude: Candidate[] = []): Promise<Candidate> {
    return this.#waitFor(
      () => {
        const leaders = this.believedLeaders();
        return leaders.length === 1 && !exclude.includes(leaders[0]!) ? leaders[0] : undefined;
      },
      withinMs,
      'a single leader',
    );
  }

  #waitFor<T>(probe: () => T | undefined, withinMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = probe();
        if (found === undefined) return;
        this.#listeners.delete(check);
        clearTimeout(timer);
        clearInterval(poll);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(check);
        clearInterval(poll);
        reject(new Error(`timed out after ${withinMs} ms waiting for ${what}\n${this.describe()}`));
      }, withinMs);
      const poll = setInterval(check, 20);
      this.#listeners.add(check);
      check();
    });
  }

  // ---- faults --------------------------------------------------------------------------------

  #proxy(c: Candidate): FaultProxy {
    if (!c.proxy) throw new Error(`${c.id} has no fault proxy (external server)`);
    return c.proxy;
  }

  #fault(description: string): void {
    this.faults.push(`${new Date().toISOString().slice(11, 23)} ${description}`);
  }

  pause(c: Candidate): number {
    this.#fault(`SIGSTOP ${c.id}`);
    c.process.kill('SIGSTOP');
    c.frozen = true;
    return wallNow();
  }

  resume(c: Candidate): number {
    this.#fault(`SIGCONT ${c.id}`);
    const at = wallNow();
    c.process.kill('SIGCONT');
    c.frozen = false;
    return at;
  }

  kill(c: Candidate): number {
    this.#fault(`SIGKILL ${c.id}`);
    const at = wallNow();
    if (c.frozen) c.process.kill('SIGCONT');
    c.process.kill('SIGKILL');
    c.alive = false;
    void c.proxy?.close();
    return at;
  }

  /** `pg_terminate_backend` on a candidate's pool connections or its LISTEN connection. */
  async terminate(c: Candidate, which: 'pool' | 'listen'): Promise<number> {
    this.#fault(`pg_terminate_backend ${c.id} ${which}`);
    const rows = await this.admin`
      select pg_terminate_backend(pid) from pg_stat_activity
      where application_name = ${c.id} and (query ilike 'listen %') = ${which === 'listen'}`;
    return rows.length;
  }

  async listening(c: Candidate): Promise<boolean> {
    const rows = await this.admin`select 1 from pg_stat_activity where application_name = ${c.id} and query ilike 'listen %'`;
    return rows.length > 0;
  }

  partition(c: Candidate): void {
    this.#fault(`blackhole ${c.id}`);
    this.#proxy(c).set({ kind: 'blackhole' });
  }

  /**
   * Partitions `c` at the first chunk it sends that contains `pattern`: that chunk still reaches
   * the server, nothing after it in either direction does. Resolves with the moment it happened.
   */
  async partitionAt(c: Candidate, pattern: string, withinMs: number): Promise<number> {
    const proxy = this.#proxy(c);
    proxy.set({ kind: 'blackhole-at', pattern: pattern.toLowerCase(), forward: true });
    const until = wallNow() + withinMs;
    while (proxy.mode.kind !== 'blackhole') {
      if (wallNow() > until) throw new Error(`${c.id} sent nothing containing ${JSON.stringify(pattern)} within ${withinMs} ms`);
      await sleep(1);
    }
    this.#fault(`blackhole ${c.id} after a chunk containing ${JSON.stringify(pattern)}`);
    return wallNow();
  }

  slow(c: Candidate, ms: number): void {
    this.#fault(`delay ${c.id} by ${ms} ms`);
    this.#proxy(c).set({ kind: 'delay', ms });
  }

  heal(c: Candidate): void {
    if (!c.proxy) return;
    if (c.proxy.mode.kind !== 'pass') this.#fault(`heal ${c.id}`);
    c.proxy.set({ kind: 'pass' });
  }

  cut(c: Candidate): void {
    this.#fault(`reset connections of ${c.id}`);
    this.#proxy(c).cut();
  }

  async restartServer(mode: 'fast' | 'immediate'): Promise<void> {
    this.#fault(`restart PostgreSQL (${mode})`);
    if (!this.server) throw new Error('restartServer needs the cluster to own its server');
    await this.server.restart(mode);
  }

  /** A client logged in as a role that may connect and nothing else (no privilege on the lease table). */
  async #unprivileged(): Promise<Sql> {
    return unprivilegedClient(this.options.adminUrl, (sql) => this.admin.unsafe(sql), 4);
  }

  /** Sends notifications on the channel, as the superuser or, with `unprivileged`, as that role: anyone can NOTIFY. */
  async notify(payloads: string[], options: { batch?: number; unprivileged?: boolean } = {}): Promise<void> {
    const batch = options.batch ?? 500;
    this.#fault(`${payloads.length} injected notifications${options.unprivileged ? ' from an unprivileged role' : ''}`);
    const sender = options.unprivileged ? await this.#unprivileged() : this.admin;
    try {
      const batches: string[][] = [];
      for (let i = 0; i < payloads.length; i += batch) batches.push(payloads.slice(i, i + batch));
      await Promise.all(batches.map((b) => sender`select pg_notify('river_leadership', p) from unnest(${b}::text[]) as p`));
    } finally {
      if (sender !== this.admin) await sender.end({ timeout: 1 });
    }
  }

  /** The forced handoff an unprivileged role would attempt: resolves with the database's refusal, or null if it went through. */
  async requestResignAsUnprivileged(): Promise<unknown> {
    const sender = await this.#unprivileged();
    try {
      await requestResign(drizzle(sender), { name: this.name });
      return null;
    } catch (error) {
      return error;
    } finally {
      await sender.end({ timeout: 1 });
    }
  }

  async stats(c: Candidate): Promise<ElectorStats> {
    return new Promise((resolve) => {
      this.#stats.set(c.pid, resolve);
      c.process.send({ type: 'stats' } satisfies ParentMessage);
    });
  }

  /** Asks a candidate to stop gracefully (resign + NOTIFY); resolves when its process exits. */
  async stop(c: Candidate): Promise<number> {
    const at = wallNow();
    const exited = new Promise((r) => c.process.once('exit', r));
    c.process.send({ type: 'stop' } satisfies ParentMessage);
    await exited;
    return at;
  }

  async leaseExpiry(): Promise<{ leaderId: string; term: number; expiresAt: number } | null> {
    const [row] = await this.admin<{ leader_id: string; term: string; expires_ms: number }[]>`
      select leader_id, term, extract(epoch from expires_at) * 1000 as expires_ms from river_leader where name = ${this.name}`;
    return row ? { leaderId: row.leader_id, term: Number(row.term), expiresAt: Number(row.expires_ms) } : null;
  }

  // ---- verdict -------------------------------------------------------------------------------

  /** The ledger of committed writes, in commit order (the counter). */
  async ledger(): Promise<LedgerRecord[]> {
    const rows = await this.admin<{ n: string; term: string; pid: number }[]>`
      select n, term, pid from ${this.admin(this.schema)}.ledger order by n`;
    return rows.map((r) => ({ n: Number(r.n), term: Number(r.term), pid: r.pid }));
  }

  /**
   * Runs the history checker: for fenced writers over every action and the fenced table's
   * commit log; for ledger writers over the ledger, in commit order.
   */
  async check(): Promise<void> {
    if (this.options.write === 'transaction' || this.options.write === 'unchecked') {
      checkLedger(await this.ledger());
      return;
    }
    const rows = await this.admin<{ id: string; term: string; pid: number }[]>`
      select id, term, pid from ${this.admin(this.schema)}.actions where accepted order by id`;
    const fence: FenceRecord[] = rows.map((r) => ({ id: Number(r.id), term: Number(r.term), pid: r.pid }));
    checkHistory(this.actions, fence);
  }

  report(label: string): string {
    const gained = this.transitions.filter((t) => t.event === 'gained').length;
    const rejected = this.actions.filter((a) => !a.accepted).length;
    return `${label}: faults ${this.faults.length}, handoffs ${Math.max(0, gained - 1)}, actions ${this.actions.length}, rejected writes ${rejected}, violations 0`;
  }

  describe(): string {
    const t0 = this.transitions[0]?.at ?? 0;
    return [
      'faults:',
      ...this.faults.slice(-10).map((f) => `  ${f}`),
      'transitions:',
      ...this.transitions
        .slice(-12)
        .map((t) => `  +${(t.at - t0).toFixed(0)} ms ${t.id} ${t.event} term ${t.term}${t.reason ? ` (${t.reason})` : ''}`),
      ...(this.errors.length ? ['errors:', ...this.errors.slice(-5).map((e) => `  ${e}`)] : []),
      'candidates:',
      ...[...this.candidates.values()].map(
        (c) =>
          `  ${c.id} ${c.alive ? 'alive' : `exited (${c.exit ?? '?'})`}${c.frozen ? ', frozen' : ''}${c.proxy ? `, proxy ${c.proxy.mode.kind}` : ''}`,
      ),
    ].join('\n');
  }

  async close(): Promise<void> {
    for (const c of this.candidates.values()) {
      if (!c.alive) continue;
      if (c.frozen) c.process.kill('SIGCONT');
      c.process.kill('SIGKILL');
    }
    await Promise.all([...this.candidates.values()].map((c) => c.proxy?.close()));
    await this.admin.end({ timeout: 1 });
    await this.server?.stop();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
