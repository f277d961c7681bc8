/**
 * `drizzle-leader demo --fleet` (`npm start -- --fleet`): four member processes share 60 names
 * through elector groups; then one member is SIGKILLed, one joins, one is drained (stopped
 * gracefully). Every step is measured from the members' own reports: the spread (max − min names
 * led among the live members), how long until every name of the member that left is led again,
 * and how long until the spread is back to ≤ 1. Exits non-zero naming the step that misbehaved.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { wallNow } from '../../dev/candidate-protocol.js';
import type { FleetMemberCommand, FleetMemberReport } from '../../dev/fleet-member.js';
import { formatDuration, formatTable } from '../../dev/format.js';
import { DEMO_TIMINGS, type DemoOptions, type DemoReport, type DemoSummaryBase, devProgram, startDemo } from './scaffold.js';

const NAMES = 60;
const MEMBERS = 4;

export interface FleetDemoEvent {
  kind: 'start' | 'SIGKILL' | 'join' | 'drain';
  member: string;
  /** Names the member led when it left (SIGKILL, drain), or took over (join). */
  names: number;
  /** From the kill or the stop call to the last of its names led again by another member. */
  allLedAgainMs?: number;
  /** The same, per name: median. */
  handoffP50Ms?: number;
  /** Lease the database still had on the killed member's names, the longest. */
  leaseLeftMs?: number;
  maxSpread: number;
  /** From the event to every name led and the spread ≤ 1 again. */
  spreadAtMostOneAfterMs: number;
  counts: number[];
}

export interface FleetDemoSummary extends DemoSummaryBase {
  names: number;
  events: FleetDemoEvent[];
  /** Gains, in time order per name, whose term did not exceed that name's previous term. */
  nonIncreasingTerms: number;
}

interface Member {
  readonly id: string;
  readonly child: ChildProcess;
  readonly held: Set<string>;
  alive: boolean;
  stopping: boolean;
  readyAt: number;
}

export async function runFleetDemo(options: DemoOptions): Promise<boolean> {
  const runId = randomBytes(4).toString('hex');
  const schema = `drizzle_leader_fleet_${runId}`;
  const group = `demo-fleet-${runId}`;
  const names = Array.from({ length: NAMES }, (_, i) => `job-${String(i + 1).padStart(2, '0')}`);
  const members: Member[] = [];
  const holder = new Map<string, string>();
  const gains: { name: string; id: string; at: number; term: number }[] = [];
  let url = options.url ?? '';
  const { view, summary, step, database, run } = startDemo<FleetDemoSummary>(options, {
    schema,
    fields: { names: NAMES, events: [], nonIncreasingTerms: 0 },
    stopChildren: () => {
      for (const m of members) if (m.alive) m.child.kill('SIGKILL');
    },
  });
  const live = () => members.filter((m) => m.alive && !m.stopping);
  const counts = () => live().map((m) => m.held.size);
  const spread = () => {
    const c = counts();
    return c.length ? Math.max(...c) - Math.min(...c) : 0;
  };
  // Members report in batches (fleet-member.ts, FLUSH_MS), so a member's gain can arrive before the
  // report of the loss it followed: balanced only once the reports agree on one holder per name.
  const balanced = () => holder.size === NAMES && counts().reduce((a, b) => a + b, 0) === NAMES && spread() <= 1;
  const shown = () =>
    live()
      .map((m) => `${m.id}=${m.held.size}`)
      .join(' ');
  /** Waits for `done`, tracking the largest spread on the way; NaN on timeout. */
  const until = async (done: () => boolean, timeoutMs: number) => {
    const from = wallNow();
    let maxSpread = spread();
    while (!done()) {
      maxSpread = Math.max(maxSpread, spread());
      if (wallNow() - from > timeoutMs) return { ms: Number.NaN, maxSpread };
      await sleep(5);
    }
    return { ms: wallNow() - from, maxSpread };
  };
  /** When each of `leaving`'s names was first gained by another member after `since`. */
  const ledAgain = async (leaving: string[], from: string, since: number, timeoutMs: number) => {
    const pending = new Set(leaving);
    const times: number[] = [];
    let scanned = 0;
    for (const deadline = wallNow() + timeoutMs; pending.size > 0 && wallNow() < deadline; await sleep(5)) {
      for (; scanned < gains.length; scanned++) {
        const g = gains[scanned]!;
        if (g.at > since && g.id !== from && pending.delete(g.name)) times.push(g.at - since);
      }
    }
    return { times: times.sort((a, b) => a - b), missing: pending.size };
  };

  const script = devProgram('fleet-member', "the fleet demo's member program");
  const spawn = (id: string) =>
    new Promise<Member>((resolve, reject) => {
      const child = fork(script.path, [], { execArgv: script.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const member: Member = { id, child, held: new Set(), alive: true, stopping: false, readyAt: Number.NaN };
      // A member that is already exiting cannot take a message: that is no error of the demo's.
      child.on('error', () => {});
      members.push(member);
      child.on('exit', () => {
        member.alive = false;
        for (const name of member.held) if (holder.get(name) === id) holder.delete(name);
        member.held.clear();
        reject(new Error(`${id} exited before it was ready`));
      });
      child.on('message', (r: FleetMemberReport) => {
        if (r.type === 'loaded') {
          const init: FleetMemberCommand = {
            type: 'init',
            url,
            mode: 'group',
            id,
            names,
            group,
            timings: DEMO_TIMINGS,
            leaseSchema: schema,
            poolMax: 1,
          };
          child.send(init);
        } else if (r.type === 'ready') {
          member.readyAt = r.at;
          resolve(member);
        } else if (r.type === 'error') view.log(`${id}: error: ${r.message.split('\n')[0]}`);
        else if (r.type === 'changes') {
          for (const c of r.changes) {
            if (c.k === 'g') {
              member.held.add(c.name);
              holder.set(c.name, id);
              gains.push({ name: c.name, id, at: c.at, term: c.term });
            } else {
              member.held.delete(c.name);
              if (holder.get(c.name) === id) holder.delete(c.name);
            }
          }
        }
      });
    });

  const steps = async () => {
    // ---- a database, the lease table in the scratch schema -----------------------------------
    const opened = await database();
    url = opened.url;
    const { client } = opened;
    view.log(
      `group "${group}": ${NAMES} names (job-01..job-${NAMES}), ttl ${DEMO_TIMINGS.ttl} ms, renew every ${DEMO_TIMINGS.renewInterval} ms`,
    );

    const status = setInterval(() => {
      view.status(`${shown() || 'no members'}  spread ${spread()}  unled ${NAMES - holder.size}`);
    }, 100);
    try {
      // ---- 1. a fleet of four ------------------------------------------------------------------
      view.progress(`starting ${MEMBERS} member processes, one elector group each`);
      const t0 = wallNow();
      await Promise.all(Array.from({ length: MEMBERS }, (_, i) => spawn(`member-${i + 1}`)));
      const first = await until(balanced, 20_000);
      summary.events.push({
        kind: 'start',
        member: '-',
        names: NAMES,
        maxSpread: first.maxSpread,
        spreadAtMostOneAfterMs: wallNow() - t0,
        counts: counts(),
      });
      step(
        'balanced start',
        Number.isFinite(first.ms),
        `${shown()} (spread ${spread()}, every name led ${formatDuration(first.ms)} after the last member started)`,
      );
      await sleep(DEMO_TIMINGS.renewInterval * 2);

      // ---- 2. SIGKILL: its names wait out their leases -------------------------------------------
      const victim = live()[0]!;
      const victimNames = [...victim.held];
      const [lease] = await client.unsafe<{ ms: number }[]>(
        `select coalesce(max(extract(epoch from expires_at - now()) * 1000), 0)::float8 as ms from "${schema}".river_leader where leader_id = $1 and name not like 'drizzle-leader:%'`,
        [victim.id],
      );
      const killedAt = wallNow();
      victim.child.kill('SIGKILL');
      view.log(`killed ${victim.id} (pid ${victim.child.pid}) with SIGKILL: it led ${victimNames.length} names`);
      const killed = await ledAgain(victimNames, victim.id, killedAt, DEMO_TIMINGS.ttl * 4);
      const killedAll = killed.times.at(-1) ?? Number.NaN;
      const afterKill = await until(balanced, 15_000);
      summary.events.push({
        kind: 'SIGKILL',
        member: victim.id,
        names: victimNames.length,
        allLedAgainMs: killedAll,
        handoffP50Ms: killed.times[Math.floor(killed.times.length / 2)],
        leaseLeftMs: Number(lease?.ms ?? Number.NaN),
        maxSpread: afterKill.maxSpread,
        spreadAtMostOneAfterMs: wallNow() - killedAt,
        counts: counts(),
      });
      step(
        'killed member replaced',
        killed.missing === 0 && killedAll <= DEMO_TIMINGS.ttl + 1_000,
        `its ${victimNames.length} names led again within ${formatDuration(killedAll)} (lease left at the kill ${formatDuration(Number(lease?.ms ?? 0))}; goal lease + 1 s)${killed.missing ? `, ${killed.missing} not led` : ''}`,
      );
      step(
        'balanced after the kill',
        Number.isFinite(afterKill.ms),
        `${shown()} (spread ${spread()}, max ${afterKill.maxSpread} on the way, ${formatDuration(wallNow() - killedAt)} after the kill)`,
      );
      await sleep(DEMO_TIMINGS.renewInterval * 2);

      // ---- 3. a member joins: the others shed its share (DELETE + NOTIFY, no stealing) ------------
      view.progress('starting member-5');
      const joiner = await spawn('member-5');
      const joined = await until(balanced, 15_000);
      summary.events.push({
        kind: 'join',
        member: joiner.id,
        names: joiner.held.size,
        maxSpread: joined.maxSpread,
        spreadAtMostOneAfterMs: wallNow() - joiner.readyAt,
        counts: counts(),
      });
      step(
        'join rebalanced',
        Number.isFinite(joined.ms) && joiner.held.size > 0,
        `${shown()}: member-5 took ${joiner.held.size} names, spread ${spread()} ${formatDuration(wallNow() - joiner.readyAt)} after it started`,
      );
      await sleep(DEMO_TIMINGS.renewInterval * 2);

      // ---- 4. drain: stop() resigns every name with NOTIFY ---------------------------------------
      const leaving = live()[0]!;
      const leavingNames = [...leaving.held];
      const stopAt = wallNow();
      leaving.stopping = true;
      leaving.child.send({ type: 'stop' } satisfies FleetMemberCommand);
      view.log(`draining ${leaving.id}: stop() resigns its ${leavingNames.length} names with NOTIFY`);
      const drained = await ledAgain(leavingNames, leaving.id, stopAt, DEMO_TIMINGS.ttl * 4);
      const drainedAll = drained.times.at(-1) ?? Number.NaN;
      const afterDrain = await until(balanced, 15_000);
      summary.events.push({
        kind: 'drain',
        member: leaving.id,
        names: leavingNames.length,
        allLedAgainMs: drainedAll,
        handoffP50Ms: drained.times[Math.floor(drained.times.length / 2)],
        maxSpread: afterDrain.maxSpread,
        spreadAtMostOneAfterMs: wallNow() - stopAt,
        counts: counts(),
      });
      step(
        'drained member handed over',
        drained.missing === 0 && drainedAll < DEMO_TIMINGS.ttl,
        `its ${leavingNames.length} names led again within ${formatDuration(drainedAll)} (median ${formatDuration(drained.times[Math.floor(drained.times.length / 2)] ?? Number.NaN)}; through NOTIFY, not the ${DEMO_TIMINGS.ttl} ms lease)`,
      );
      step(
        'balanced after the drain',
        Number.isFinite(afterDrain.ms),
        `${shown()} (spread ${spread()}, ${formatDuration(wallNow() - stopAt)} after stop())`,
      );

      // ---- 5. the database agrees -----------------------------------------------------------------
      const rows = await client.unsafe<{ name: string; leader_id: string }[]>(
        `select name, leader_id from "${schema}".river_leader where expires_at > now() and name not like 'drizzle-leader:%'`,
      );
      const agree = rows.length === NAMES && rows.every((r) => holder.get(r.name) === r.leader_id);
      step('the table agrees', agree, `${rows.length} live leases, each held by the member that reported leading it`);
      // Reports come in per-process batches: order each name's gains by when they happened.
      const lastTerm = new Map<string, number>();
      for (const g of [...gains].sort((a, b) => a.at - b.at)) {
        if ((lastTerm.get(g.name) ?? 0) >= g.term) summary.nonIncreasingTerms++;
        lastTerm.set(g.name, g.term);
      }
      step(
        'terms',
        summary.nonIncreasingTerms === 0,
        `${gains.length} leaderships gained over ${NAMES} names, each with a larger term than the name's previous one (${summary.nonIncreasingTerms} not)`,
      );
    } finally {
      clearInterval(status);
    }

    for (const m of members) if (m.alive && m.child.connected) m.child.send({ type: 'stop' } satisfies FleetMemberCommand, () => {});
    for (let waited = 0; waited < 10_000 && members.some((m) => m.alive); waited += 50) await sleep(50);
  };
  return run(steps, report(summary));
}

function report(summary: FleetDemoSummary): DemoReport {
  return {
    tables: (out) => {
      const ms = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : formatDuration(x));
      out();
      out(`Fleet (${summary.names} names)`);
      out(
        formatTable([
          ['EVENT', 'MEMBER', 'NAMES', 'ALL LED AGAIN', 'MEDIAN', 'LEASE LEFT', 'MAX SPREAD', 'SPREAD <= 1 AFTER', 'NAMES PER MEMBER'],
          ...summary.events.map((e) => [
            e.kind,
            e.member,
            String(e.names),
            ms(e.allLedAgainMs),
            ms(e.handoffP50Ms),
            ms(e.leaseLeftMs),
            String(e.maxSpread),
            ms(e.spreadAtMostOneAfterMs),
            e.counts.join(' '),
          ]),
        ]),
      );
      out();
    },
    passed: () =>
      `Every name led again after each fault, the spread back to <= 1 after each, terms increasing per name. ${formatDuration(summary.durationMs)} in all.`,
  };
}
