/**
 * `drizzle-leader demo` (`npm start`): five candidate processes, real failures, measured.
 *
 * The candidates' leader work is `elector.transaction`: each one increments a counter row and
 * appends (counter, term, pid) to a ledger that has no fence column, so only the lease check
 * keeps a deposed leader's write out. Steady leadership; a graceful stop (handoff through
 * NOTIFY); SIGKILL (handoff after the lease); SIGSTOP inside a lease-checked transaction, past
 * the lease, then SIGCONT (the stale leader must step down on wake, and the write it was in the
 * middle of must be refused); a forced handoff through requestResign. Then a summary: each
 * handoff's latency, the terms, writes per term, and an audit of the ledger in commit order
 * (stale-term commits). Exits non-zero naming the step that misbehaved.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sql } from 'postgres';
import { type CandidateMessage, type ParentMessage, wallNow } from '../../dev/candidate-protocol.js';
import { formatDuration, formatTable } from '../../dev/format.js';
import { staleTermCommits } from '../../dev/ledger.js';
import { createLeaderTable, getLeader, type LeaderDatabase, type LeaderTable, requestResign } from '../../index.js';
import type { LiveView } from './live-view.js';
import { DEMO_TIMINGS, type DemoOptions, type DemoReport, type DemoSummaryBase, devProgram, startDemo } from './scaffold.js';

const CANDIDATES = 5;
/**
 * Each ledger transaction stays open this long after its lease check, as a job computing what
 * to write would: long enough for the SIGSTOP step to freeze the leader inside one.
 */
const HOLD_MS = 100;

export interface DemoHandoff {
  kind: 'graceful stop' | 'SIGKILL' | 'SIGSTOP past the lease' | 'forced (requestResign)';
  fromTerm: number;
  toTerm: number;
  latencyMs: number;
  /** Lease time left (by the database) when the leader was killed or frozen. */
  leaseRemainingMs?: number;
}

export interface DemoSummary extends DemoSummaryBase {
  handoffs: DemoHandoff[];
  terms: number[];
  /** Per term: ledger rows committed, and writes refused with LeadershipLostError (reported by the candidates). */
  actionsPerTerm: { term: number; accepted: number; rejected: number }[];
  /** Ledger rows, in counter order, whose term is older than a row before them or belongs to a second process. */
  staleTermCommits: number;
  ledgerWrites: number;
  /** Writes of the frozen leader's old term that were refused after it woke. */
  deposedWritesRefused: number;
  /** Writes of the frozen leader's old term that committed after it woke. */
  frozenLeaderActionsAfterResume: number;
}

interface Candidate {
  readonly id: string;
  readonly process: ChildProcess;
  readonly pid: number;
  alive: boolean;
}

type Event = CandidateMessage & { receivedAt: number };

export async function runDemo(options: DemoOptions): Promise<boolean> {
  const candidates = new Map<number, Candidate>();
  const events: Event[] = [];
  const waiters = new Set<() => void>();
  const runId = randomBytes(4).toString('hex');
  const name = `demo-${runId}`;
  const schema = `drizzle_leader_demo_${runId}`;
  const { table } = createLeaderTable({ schema, table: 'river_leader' });
  const { view, summary, step, database, run } = startDemo<DemoSummary>(options, {
    schema,
    fields: {
      handoffs: [],
      terms: [],
      actionsPerTerm: [],
      staleTermCommits: 0,
      ledgerWrites: 0,
      deposedWritesRefused: 0,
      frozenLeaderActionsAfterResume: 0,
    },
    stopChildren: () => {
      for (const c of candidates.values()) {
        if (c.alive) {
          c.process.kill('SIGCONT');
          c.process.kill('SIGKILL');
        }
      }
    },
  });

  /** Resolves with the first event (new ones included) matching `predicate`, or null after `timeoutMs`. */
  const nextEvent = <T extends Event>(predicate: (e: Event) => e is T, timeoutMs: number, from = events.length): Promise<T | null> =>
    new Promise((resolve) => {
      const check = () => {
        const found = events.slice(from).find(predicate);
        if (found) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        resolve(null);
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  const isGained = (e: Event): e is Event & { type: 'transition' } => e.type === 'transition' && e.event === 'gained';
  const gainedBy =
    (exclude: number) =>
    (e: Event): e is Event & { type: 'transition' } =>
      isGained(e) && e.pid !== exclude;

  const currentLeader = (): { pid: number; term: number } | null => {
    const leaders = new Map<number, number>();
    for (const e of events) {
      if (e.type !== 'transition') continue;
      if (e.event === 'gained') leaders.set(e.pid, e.term);
      else if (leaders.get(e.pid) === e.term) leaders.delete(e.pid);
    }
    const live = [...leaders].filter(([pid]) => candidates.get(pid)?.alive);
    const last = live.at(-1);
    return last ? { pid: last[0], term: last[1] } : null;
  };

  const steps = async () => {
    // ---- a database, the lease table in the scratch schema -----------------------------------
    const { url, db, client } = await database();
    // The ledger the leaders write through elector.transaction: no fence column anywhere; the
    // counter row orders the writes by commit.
    await client.unsafe(`create table "${schema}".counter (id int primary key, n bigint not null)`);
    await client.unsafe(`insert into "${schema}".counter values (1, 0)`);
    await client.unsafe(`create table "${schema}".ledger (n bigint primary key, term bigint not null, pid int not null)`);
    view.log(
      `election "${name}": ttl ${DEMO_TIMINGS.ttl} ms, renew every ${DEMO_TIMINGS.renewInterval} ms, safety margin ${DEMO_TIMINGS.safetyMargin} ms`,
    );

    // ---- five candidate processes ------------------------------------------------------------
    view.progress(`starting ${CANDIDATES} candidate processes`);
    const script = devProgram('candidate');
    for (let i = 1; i <= CANDIDATES; i++) {
      const id = `candidate-${i}`;
      const child = fork(script.path, [], {
        execArgv: script.execArgv,
        env: {
          ...process.env,
          DEMO_URL: url,
          DEMO_NAME: name,
          DEMO_SCHEMA: schema,
          DEMO_LEASE_SCHEMA: schema,
          DEMO_ID: id,
          DEMO_TIMINGS: `${DEMO_TIMINGS.ttl},${DEMO_TIMINGS.renewInterval},${DEMO_TIMINGS.safetyMargin}`,
          DEMO_WRITE: 'transaction',
          DEMO_TX_HOLD_MS: String(HOLD_MS),
          // The server ends the frozen leader's transaction (its session, with postgres.js), and
          // postgres.js 3.4.9 can then crash the process on waking (docs/operations.md, "Known
          // driver issue"): node-postgres wakes cleanly and reports its refused write.
          DEMO_DRIVER: 'node-postgres',
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const candidate: Candidate = { id, process: child, pid: child.pid!, alive: true };
      candidates.set(child.pid!, candidate);
      child.on('exit', () => {
        candidate.alive = false;
      });
      child.on('message', (message: CandidateMessage) => {
        events.push({ ...message, receivedAt: wallNow() });
        if (message.type === 'transition') {
          view.log(
            `${candidate.id} (pid ${candidate.pid}) ${message.event === 'gained' ? 'became leader' : 'stepped down'}, term ${message.term}${message.reason ? ` (${message.reason})` : ''}`,
          );
        } else if (message.type === 'error') {
          view.log(`${candidate.id}: error: ${message.message.split('\n')[0]}`);
        }
        for (const waiter of [...waiters]) waiter();
      });
    }
    const readyCount = async () => {
      for (let waited = 0; waited < 30_000; waited += 50) {
        if (events.filter((e) => e.type === 'ready').length === CANDIDATES) return true;
        await sleep(50);
      }
      return false;
    };
    step('start', await readyCount(), `${CANDIDATES} candidate processes running, each with its own pool and LISTEN connection`);

    const statusLoop = startStatus(view, db, name, table, candidates);
    try {
      // ---- 1. steady leadership -------------------------------------------------------------
      const first = await nextEvent(isGained, 5_000, 0);
      step('steady leadership', first !== null, first ? `pid ${first.pid} leads with term ${first.term}` : 'nobody was elected');
      const before = await getLeader(db, { name, table });
      await sleep(DEMO_TIMINGS.renewInterval * 3);
      const after = await getLeader(db, { name, table });
      step(
        'renewals',
        Boolean(before && after && after.term === before.term && after.expiresAt > before.expiresAt),
        after
          ? `term ${after.term} renewed: lease now ends ${formatDuration(after.expiresAt.getTime() - before!.expiresAt.getTime())} later`
          : 'lease lost',
      );

      // ---- 2. graceful stop: handoff through NOTIFY -----------------------------------------
      let leader = currentLeader()!;
      view.log(`stopping leader pid ${leader.pid} gracefully (it resigns and NOTIFYs)`);
      let mark = events.length;
      candidates.get(leader.pid)!.process.send({ type: 'stop' } satisfies ParentMessage);
      const stopping = await nextEvent(
        (e): e is Event & { type: 'stopping' } => e.type === 'stopping' && e.pid === leader.pid,
        5_000,
        mark,
      );
      const graceful = await nextEvent(gainedBy(leader.pid), 5_000, mark);
      const gracefulMs = graceful && stopping ? graceful.at - stopping.at : Number.NaN;
      if (graceful) summary.handoffs.push({ kind: 'graceful stop', fromTerm: leader.term, toTerm: graceful.term, latencyMs: gracefulMs });
      step(
        'graceful handoff',
        graceful !== null && gracefulMs < DEMO_TIMINGS.ttl / 2 && graceful.term > leader.term,
        graceful
          ? `pid ${graceful.pid} took over with term ${graceful.term} in ${formatDuration(gracefulMs)} (through NOTIFY, not the ${DEMO_TIMINGS.ttl} ms lease)`
          : 'no new leader',
      );
      await sleep(600);

      // ---- 3. SIGKILL: handoff after the lease ----------------------------------------------
      leader = currentLeader()!;
      const leaseAtKill = await getLeader(db, { name, table });
      mark = events.length;
      const killedAt = wallNow();
      candidates.get(leader.pid)!.process.kill('SIGKILL');
      view.log(`killed leader pid ${leader.pid} with SIGKILL (${formatDuration(leaseAtKill?.remainingMs ?? 0)} of lease left)`);
      const afterKill = await nextEvent(gainedBy(leader.pid), DEMO_TIMINGS.ttl * 3, mark);
      const killMs = afterKill ? afterKill.at - killedAt : Number.NaN;
      const remaining = leaseAtKill?.remainingMs ?? DEMO_TIMINGS.ttl;
      if (afterKill)
        summary.handoffs.push({
          kind: 'SIGKILL',
          fromTerm: leader.term,
          toTerm: afterKill.term,
          latencyMs: killMs,
          leaseRemainingMs: remaining,
        });
      step(
        'crash handoff',
        afterKill !== null && killMs >= remaining - 100 && killMs <= remaining + 1_000,
        afterKill
          ? `pid ${afterKill.pid} took over with term ${afterKill.term} after ${formatDuration(killMs)} (lease had ${formatDuration(remaining)} left: nobody moved before it expired)`
          : 'no new leader',
      );
      await sleep(600);

      // ---- 4. SIGSTOP inside a lease-checked transaction, past the lease, then SIGCONT ------
      leader = currentLeader()!;
      const frozen = candidates.get(leader.pid)!;
      const leaseAtFreeze = await getLeader(db, { name, table });
      mark = events.length;
      // The leader stops itself inside its next lease-checked transaction, right after the
      // lease check (a SIGSTOP sent from here lands there only when the timing is kind).
      frozen.process.send({ type: 'freeze' } satisfies ParentMessage);
      const freezing = await nextEvent(
        (e): e is Event & { type: 'freezing' } => e.type === 'freezing' && e.pid === frozen.pid,
        5_000,
        mark,
      );
      const inside = freezing !== null;
      if (!inside) frozen.process.kill('SIGSTOP');
      const frozenAt = freezing?.at ?? wallNow();
      view.log(
        `froze leader pid ${frozen.pid} with SIGSTOP (term ${leader.term}, ${inside ? 'inside a lease-checked transaction' : 'between two writes'})`,
      );
      const afterFreeze = await nextEvent(gainedBy(frozen.pid), DEMO_TIMINGS.ttl * 4, mark);
      const freezeMs = afterFreeze ? afterFreeze.at - frozenAt : Number.NaN;
      if (afterFreeze) {
        summary.handoffs.push({
          kind: 'SIGSTOP past the lease',
          fromTerm: leader.term,
          toTerm: afterFreeze.term,
          latencyMs: freezeMs,
          leaseRemainingMs: leaseAtFreeze?.remainingMs,
        });
      }
      step(
        'frozen leader replaced',
        afterFreeze !== null,
        afterFreeze
          ? `pid ${afterFreeze.pid} took over with term ${afterFreeze.term} after ${formatDuration(freezeMs)} (lease had ${formatDuration(leaseAtFreeze?.remainingMs ?? 0)} left at the freeze)`
          : 'no new leader',
      );
      await sleep(Math.max(0, frozenAt + DEMO_TIMINGS.ttl * 1.5 - wallNow()) + 300);
      const resumedAt = wallNow();
      frozen.process.kill('SIGCONT');
      view.log(`resumed pid ${frozen.pid} after ${formatDuration(resumedAt - frozenAt)} frozen`);
      const stepDown = await nextEvent(
        (e): e is Event & { type: 'transition' } =>
          e.type === 'transition' && e.pid === frozen.pid && e.event === 'lost' && e.term === leader.term,
        3_000,
        mark,
      );
      // Its write's `at` predates the freeze: what counts is that the answer came after the wake.
      const staleWrite = (accepted: boolean) => (e: Event) =>
        e.type === 'action' && e.pid === frozen.pid && e.term === leader.term && e.accepted === accepted && e.receivedAt >= resumedAt;
      // A process just woken from SIGSTOP on a busy machine can take seconds to run again.
      const refused = await nextEvent((e): e is Event => staleWrite(false)(e), 10_000, mark);
      await sleep(500);
      summary.frozenLeaderActionsAfterResume = events.filter(staleWrite(true)).length;
      summary.deposedWritesRefused = events.filter(staleWrite(false)).length;
      step(
        'stale leader steps down on wake',
        stepDown !== null &&
          stepDown.type === 'transition' &&
          stepDown.reason === 'trust-expired' &&
          summary.frozenLeaderActionsAfterResume === 0,
        stepDown
          ? `pid ${frozen.pid} stepped down (${stepDown.type === 'transition' ? stepDown.reason : ''}) and committed ${summary.frozenLeaderActionsAfterResume} writes with its stale term ${leader.term} after waking`
          : `pid ${frozen.pid} did not report stepping down`,
      );
      step(
        'deposed write refused',
        refused !== null && summary.frozenLeaderActionsAfterResume === 0,
        refused
          ? `the write pid ${frozen.pid} was making with term ${leader.term} when it froze failed with LeadershipLostError on waking (${summary.deposedWritesRefused} refused, 0 committed)`
          : `pid ${frozen.pid} reported no refused write after waking${inside ? '' : ' (it was frozen between two writes)'}`,
      );

      // ---- 5. forced handoff ------------------------------------------------------------------
      leader = currentLeader()!;
      mark = events.length;
      const requestedAt = wallNow();
      await requestResign(db, { name, table, term: leader.term });
      view.log(`operator: requestResign("${name}", term ${leader.term})`);
      const forced = await nextEvent(gainedBy(leader.pid), 5_000, mark);
      const forcedMs = forced ? forced.at - requestedAt : Number.NaN;
      if (forced)
        summary.handoffs.push({ kind: 'forced (requestResign)', fromTerm: leader.term, toTerm: forced.term, latencyMs: forcedMs });
      step(
        'forced handoff',
        forced !== null && forced.term > leader.term,
        forced ? `pid ${forced.pid} took over with term ${forced.term} in ${formatDuration(forcedMs)}` : 'no new leader',
      );
      await sleep(300);
    } finally {
      statusLoop.stop();
    }

    // ---- stop everyone, then audit the ledger ------------------------------------------------
    for (const c of candidates.values()) if (c.alive) c.process.send({ type: 'stop' } satisfies ParentMessage);
    for (let waited = 0; waited < 10_000 && [...candidates.values()].some((c) => c.alive); waited += 50) await sleep(50);
    await audit(client, schema, events, summary);
    summary.terms = events.filter(isGained).map((e) => (e.type === 'transition' ? e.term : 0));
    const increasing = summary.terms.every((t, i) => i === 0 || t > summary.terms[i - 1]!);
    step('terms', increasing, `${summary.terms.join(' < ')}`);
    step(
      'ledger audit',
      summary.staleTermCommits === 0 && summary.ledgerWrites > 0,
      `${summary.ledgerWrites} lease-checked writes committed, ${summary.actionsPerTerm.reduce((n, t) => n + t.rejected, 0)} refused with LeadershipLostError; stale-term commits = ${summary.staleTermCommits}`,
    );
  };
  return run(steps, report(summary));
}

async function audit(client: Sql, schema: string, events: Event[], summary: DemoSummary): Promise<void> {
  const rows = await client.unsafe<{ n: string; term: string; pid: number }[]>(`select n, term, pid from "${schema}".ledger order by n`);
  const ledger = rows.map((r) => ({ n: Number(r.n), term: Number(r.term), pid: r.pid }));
  summary.ledgerWrites = ledger.length;
  summary.staleTermCommits = staleTermCommits(ledger);
  const perTerm = new Map<number, { term: number; accepted: number; rejected: number }>();
  const of = (term: number) => perTerm.get(term) ?? perTerm.set(term, { term, accepted: 0, rejected: 0 }).get(term)!;
  for (const row of ledger) of(row.term).accepted++;
  for (const e of events) if (e.type === 'action' && !e.accepted) of(e.term).rejected++;
  summary.actionsPerTerm = [...perTerm.values()].sort((x, y) => x.term - y.term);
}

function report(summary: DemoSummary): DemoReport {
  return {
    tables: (out) => {
      out();
      out('Handoffs');
      out(
        formatTable([
          ['KIND', 'TERMS', 'LATENCY', 'LEASE LEFT AT FAULT'],
          ...summary.handoffs.map((h) => [
            h.kind,
            `${h.fromTerm} -> ${h.toTerm}`,
            formatDuration(h.latencyMs),
            h.leaseRemainingMs === undefined ? '-' : formatDuration(h.leaseRemainingMs),
          ]),
        ]),
      );
      out();
      out('Ledger writes per term (elector.transaction; the ledger has no fence column)');
      out(
        formatTable([
          ['TERM', 'COMMITTED', 'REFUSED'],
          ...summary.actionsPerTerm.map((t) => [String(t.term), String(t.accepted), String(t.rejected)]),
        ]),
      );
      out();
      out(`Terms in order: ${summary.terms.join(' < ') || '-'}`);
    },
    passed: () =>
      `Stale-term commits = ${summary.staleTermCommits} in ${summary.ledgerWrites} ledger writes; the deposed leader's write was refused (${summary.deposedWritesRefused}) and it committed ${summary.frozenLeaderActionsAfterResume} after waking. ${formatDuration(summary.durationMs)} in all.`,
  };
}

/** Polls the lease for the live view's header. */
function startStatus(view: LiveView, db: LeaderDatabase, name: string, table: LeaderTable, candidates: Map<number, Candidate>) {
  let stopped = false;
  void (async () => {
    while (!stopped) {
      try {
        const leader = await getLeader(db, { name, table });
        const alive = [...candidates.values()].filter((c) => c.alive).length;
        view.status(
          leader
            ? `leader ${leader.leaderId}  term ${leader.term}  lease left ${formatDuration(leader.remainingMs)}  candidates alive ${alive}`
            : `no leader  candidates alive ${alive}`,
        );
      } catch {
        // the view is best-effort
      }
      await sleep(100);
    }
  })();
  return {
    stop: () => {
      stopped = true;
    },
  };
}
