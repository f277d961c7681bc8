import { vi } from 'vitest';
import { createElector, type Elector, type ElectorOptions, type LeadershipEvent } from '../../src/index.js';
import type { Connection } from './db.js';

/** Creates electors and stops all of them at the end of a test. */
export class ElectorPool {
  readonly electors: Elector[] = [];
  readonly events = new Map<Elector, LeadershipEvent[]>();

  constructor(private readonly conn: Connection) {}

  create(options: ElectorOptions = {}): Elector {
    const elector = createElector(this.conn.db, { ttl: 5_000, renewInterval: 1_000, safetyMargin: 500, ...options });
    const log: LeadershipEvent[] = [];
    elector.subscribe((event) => void log.push(event));
    this.events.set(elector, log);
    this.electors.push(elector);
    return elector;
  }

  leaders(): Elector[] {
    return this.electors.filter((e) => e.isLeader);
  }

  async waitForOneLeader(timeout = 10_000): Promise<Elector> {
    let leader: Elector | undefined;
    await vi.waitFor(
      () => {
        const leaders = this.leaders();
        if (leaders.length !== 1) throw new Error(`expected one leader, have ${leaders.length}`);
        leader = leaders[0];
      },
      { timeout, interval: 5 },
    );
    return leader!;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.electors.map((e) => e.stop()));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Blocks this thread (the event loop included) for `ms`: a real pause, like a long GC or SIGSTOP. */
export function freezeEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Records an elector's transitions, and adds it to `all` so the test can stop every one at the end. */
export function recorded(elector: Elector, all: Elector[]): LeadershipEvent[] {
  all.push(elector);
  const events: LeadershipEvent[] = [];
  elector.subscribe((event) => void events.push(event));
  return events;
}
