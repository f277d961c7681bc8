/**
 * Scenario 8, shared by the test suite (short) and `npm run soak` (long): random faults from the
 * whole list every few hundred ms, each healed after a random while; at the end everything heals
 * and exactly one leader must emerge within the liveness bound.
 */
import { wallNow } from '../../src/dev/candidate-protocol.js';
import { type Candidate, type Cluster, sleep } from './cluster.js';

export interface ChurnOptions {
  seconds: number;
  /** Liveness bound after the last fault heals, in ms. */
  liveness: number;
  /** Progress lines (the soak prints them). */
  log?: (line: string) => void;
}

const between = (min: number, max: number) => min + Math.random() * (max - min);

/** The faults both the churn and the fleet suite inject into one candidate, and the means to heal one later. */
export interface FaultKit {
  /** Runs `heal` after `ms`, or at once when the faults end. */
  later(ms: number, heal: () => unknown): void;
  /** SIGSTOP; SIGCONT after 0.2 to 2.5 s, if it still lives. */
  pause(target: Candidate): void;
  /** SIGKILL; a new candidate after `respawnMs`. */
  kill(target: Candidate, respawnMs: number): void;
  /** The backend of its pool's or its LISTEN connection terminated, one or the other at random. */
  terminate(target: Candidate): Promise<unknown>;
  /** Cut off at the proxy; healed after 0.3 to 2 s. */
  partition(target: Candidate): void;
}

export interface FaultLoopOptions {
  seconds: number;
  /** A random while between these (ms) passes before each fault. */
  gapMs: readonly [min: number, max: number];
  /** The candidates that count as running: the target is picked among them, unfrozen and with a passing proxy. */
  living: () => Candidate[];
  /** Injects one fault: `target` a random usable candidate (if there is one), `roll` a random number in [0, 1). */
  inject: (target: Candidate | undefined, roll: number, kit: FaultKit) => Promise<unknown> | unknown;
  /** Progress lines, every 10 s or so. */
  log?: (line: string) => void;
}

/**
 * Random faults for `seconds`; then everything heals at once: the heals still pending run, the
 * frozen candidates resume and every proxy passes again. A fault that fails is an error of the
 * cluster's, not of the loop's.
 */
export async function injectFaults(c: Cluster, options: FaultLoopOptions): Promise<void> {
  const pending = new Set<{ timer: NodeJS.Timeout; heal: () => unknown }>();
  const later = (ms: number, heal: () => unknown) => {
    const entry = {
      timer: setTimeout(() => {
        pending.delete(entry);
        void Promise.resolve(heal()).catch((e) => c.errors.push(`heal: ${e}`));
      }, ms),
      heal,
    };
    pending.add(entry);
  };
  const kit: FaultKit = {
    later,
    pause: (target) => {
      c.pause(target);
      later(between(200, 2_500), () => target.alive && c.resume(target));
    },
    kill: (target, respawnMs) => {
      c.kill(target);
      later(respawnMs, () => c.spawn());
    },
    terminate: (target) => c.terminate(target, Math.random() < 0.5 ? 'pool' : 'listen'),
    partition: (target) => {
      c.partition(target);
      later(between(300, 2_000), () => c.heal(target));
    },
  };
  const { living } = options;
  const pick = (list: Candidate[]) => list[Math.floor(Math.random() * list.length)];
  const started = wallNow();
  const end = started + options.seconds * 1_000;
  let lastLog = started;

  while (wallNow() < end) {
    await sleep(between(...options.gapMs));
    const target = pick(living().filter((x) => !x.frozen && x.proxy?.mode.kind === 'pass'));
    const roll = Math.random();
    try {
      await options.inject(target, roll, kit);
    } catch (error) {
      // A fault that races with another (a candidate that just died) is not a finding.
      c.errors.push(`inject: ${error}`);
    }
    if (options.log && wallNow() - lastLog > 10_000) {
      lastLog = wallNow();
      options.log(`${((wallNow() - started) / 1_000).toFixed(0)} s: ${c.faults.length} faults, ${c.actions.length} actions`);
    }
  }

  for (const entry of [...pending]) {
    clearTimeout(entry.timer);
    pending.delete(entry);
    await Promise.resolve(entry.heal()).catch(() => {});
  }
  for (const x of living()) {
    if (x.frozen) c.resume(x);
    c.heal(x);
  }
}

export async function churn(c: Cluster, options: ChurnOptions): Promise<string> {
  const living = () => [...c.candidates.values()].filter((x) => x.alive);
  let lastRestart = wallNow();
  await injectFaults(c, {
    seconds: options.seconds,
    gapMs: [150, 500],
    living,
    log: options.log,
    inject: async (target, roll, kit) => {
      if (roll < 0.15 && target) {
        kit.pause(target);
      } else if (roll < 0.27 && target && living().length > 4) {
        kit.kill(target, 500);
      } else if (roll < 0.42 && target) {
        await kit.terminate(target);
      } else if (roll < 0.57 && target) {
        kit.partition(target);
      } else if (roll < 0.7 && target) {
        c.slow(target, Math.round(between(100, 1_500)));
        kit.later(between(500, 2_000), () => c.heal(target));
      } else if (roll < 0.8 && target) {
        c.cut(target);
      } else if (roll < 0.95) {
        const leader = c.believedLeaders()[0];
        const name = c.name;
        const payloads = Array.from({ length: 200 }, (_, i) =>
          i % 3 === 0
            ? JSON.stringify({ v: 1, action: 'resigned', name, leaderId: leader?.id ?? 'x', term: leader ? c.leaderTerm(leader) : 1 })
            : i % 3 === 1
              ? JSON.stringify({ v: 1, action: 'request_resign', name })
              : '{"broken',
        );
        await c.notify(payloads, { batch: 100, unprivileged: Math.random() < 0.5 });
      } else if (wallNow() - lastRestart > 8_000) {
        lastRestart = wallNow();
        await c.restartServer(Math.random() < 0.5 ? 'fast' : 'immediate');
      }
    },
  });

  // Everything healed at once: demand exactly one leader within the bound, one that is still
  // the only one 500 ms later. The parent's view of who believes lags the candidates: a leader
  // frozen until the heal counts until its 'lost' report arrives, so the first single leader
  // seen can be that one. A candidate that dies after the heal (postgres.js woken inside a
  // transaction the server ended: porsager/postgres#1208) is replaced, and its lease can then
  // hold the others off one more bound.
  const healedAt = wallNow();
  const dead = () => [...c.candidates.values()].filter((x) => !x.alive).length;
  const deadAtHeal = dead();
  let settledAt = Number.NaN;
  while (Number.isNaN(settledAt)) {
    while (living().length < 3) await c.spawn();
    const deaths = Math.min(dead() - deadAtHeal, 3);
    const left = healedAt + options.liveness * (1 + deaths) - wallNow();
    if (left <= 0) throw new Error(`expected one leader within ${options.liveness} ms of healing\n${c.describe()}`);
    const leader = await c.waitForSingleLeader(left);
    await sleep(500);
    const now = c.believedLeaders();
    if (now.length === 1 && now[0] === leader) settledAt = wallNow() - 500;
  }
  const diedAfterHeal = dead() - deadAtHeal;
  const gained = c.transitions.filter((t) => t.event === 'gained').length;
  return [
    `churn for ${options.seconds} s with ${c.options.candidates} candidates:`,
    `  faults injected ${c.faults.length}, handoffs ${Math.max(0, gained - 1)}, leader actions ${c.actions.length},`,
    `  rejected (fenced) writes ${c.actions.filter((a) => !a.accepted).length}, one leader ${(settledAt - healedAt).toFixed(0)} ms after healing${diedAfterHeal ? ` (${diedAfterHeal} candidates died after the heal)` : ''}`,
  ].join('\n');
}
