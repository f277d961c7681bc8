/**
 * The elector's seams, against a real server: an injected clock decides the trust window (no
 * sleeps, no frozen event loop), and a wrapped lease store shows what the loop sends. Through
 * both drivers.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createElectorWithStore, type LeaseStore } from '../src/dev/testing.js';
import { type Clock, createElector, type Elector, type LeadershipEvent } from '../src/index.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from './support/db.js';

/** A clock moved by hand: both readings start at the real ones and advance only when told. */
class ManualClock implements Clock {
  #monotonic = performance.now();
  #wall = Date.now();
  monotonic = () => this.#monotonic;
  wall = () => this.#wall;
  /** Both clocks move together, as on a running host. */
  advance(ms: number): void {
    this.#monotonic += ms;
    this.#wall += ms;
  }
  /** Only the wall clock moves: the host was suspended (CLOCK_MONOTONIC stops during a suspend on Linux). */
  suspend(ms: number): void {
    this.#wall += ms;
  }
  /** The wall clock is stepped (NTP, an operator); the monotonic clock is not. */
  stepWall(ms: number): void {
    this.#wall += ms;
  }
}

const TIMING = { ttl: 10_000, renewInterval: 2_000, safetyMargin: 1_000 } as const;

let url: string;
beforeAll(async () => {
  url = await createTestDatabase();
});

describe.each(DRIVERS)('seams (%s)', (driver) => {
  let conn: Connection;
  let counter = 0;
  const electors: Elector[] = [];
  beforeAll(() => {
    conn = connect(driver, url, { max: 6 });
  });
  afterAll(async () => {
    await Promise.all(electors.map((e) => e.stop()));
    await conn.close();
  });

  const leaderWithClock = async () => {
    const clock = new ManualClock();
    const events: LeadershipEvent[] = [];
    const elector = createElector(conn.db, { name: `${driver}-clock-${++counter}`, ...TIMING, clock });
    electors.push(elector);
    elector.subscribe((event) => void events.push(event));
    await elector.start();
    expect(elector.isLeader).toBe(true);
    return { clock, elector, events };
  };

  it('trust ends exactly at ttl − safetyMargin after the attempt started, read synchronously', async () => {
    const { clock, elector } = await leaderWithClock();
    clock.advance(TIMING.ttl - TIMING.safetyMargin - 1);
    expect(elector.isLeader).toBe(true);
    clock.advance(1);
    expect(elector.isLeader).toBe(false);
    expect(elector.state).toBe('follower');
  });

  it('a suspended host (only the wall clock moved) wakes up no longer trusting its lease', async () => {
    const { clock, elector, events } = await leaderWithClock();
    const term = elector.lease!.term;
    clock.suspend(TIMING.ttl);
    expect(elector.isLeader).toBe(false);
    await vi.waitFor(() => expect(events).toContainEqual({ type: 'lost', term, reason: 'trust-expired' }));
  });

  it('a wall clock stepped backwards cannot extend trust: the monotonic clock still ends it', async () => {
    const { clock, elector } = await leaderWithClock();
    clock.stepWall(-60_000);
    clock.advance(TIMING.ttl - TIMING.safetyMargin);
    expect(elector.isLeader).toBe(false);
  });

  it('a wall clock stepped forwards ends trust early (the safe direction)', async () => {
    const { clock, elector } = await leaderWithClock();
    clock.stepWall(TIMING.ttl);
    expect(elector.isLeader).toBe(false);
  });

  /** Wraps every store method with an in-flight counter and a log of what was sent. */
  const instrumented = () => {
    const sent: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const wrap = (store: LeaseStore): LeaseStore => {
      const track =
        <A extends unknown[], R>(kind: string, fn: (...args: A) => Promise<R>) =>
        async (...args: A): Promise<R> => {
          const input = args[0] as { term?: number };
          sent.push(input.term === undefined ? kind : `${kind}:${input.term}`);
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          try {
            return await fn(...args);
          } finally {
            inFlight--;
          }
        };
      return {
        elect: track('elect', store.elect),
        renew: track(
          'renew',
          async (
            input: Parameters<LeaseStore['renew']>[0],
            deadline: Parameters<LeaseStore['renew']>[1],
            onLate: Parameters<LeaseStore['renew']>[2],
          ) => {
            await new Promise((resolve) => setTimeout(resolve, 150)); // a slow renewal, so resign() lands mid-statement
            return store.renew(input, deadline, onLate);
          },
        ),
        resign: track('resign', store.resign),
      };
    };
    return { sent, wrap, maxInFlight: () => maxInFlight };
  };

  /** A started leader whose every statement the probe records. */
  const probedLeader = async (timing = { ttl: 3_000, renewInterval: 200, safetyMargin: 500 }) => {
    const probe = instrumented();
    const elector = createElectorWithStore(conn.db, { name: `${driver}-seam-${++counter}`, ...timing }, probe.wrap);
    electors.push(elector);
    await elector.start();
    return { probe, elector, term: elector.lease!.term };
  };

  it('resign() during a renewal in flight: the loop sends the resignation once, one statement at a time', async () => {
    const { probe, elector, term } = await probedLeader();
    await vi.waitFor(() => expect(probe.sent.at(-1)).toBe(`renew:${term}`));
    expect(await elector.resign()).toBe(true);
    expect(elector.isLeader).toBe(false);
    await elector.stop();
    expect(probe.sent.filter((s) => s === `resign:${term}`)).toHaveLength(1);
    expect(probe.maxInFlight()).toBe(1);
  });

  it('stop() after leading for longer than one ttl still resigns (the release is due one ttl after stepping down, not after gaining)', async () => {
    const timing = { ttl: 600, renewInterval: 100, safetyMargin: 150 };
    const { probe, elector, term } = await probedLeader(timing);
    await new Promise((r) => setTimeout(r, 2 * timing.ttl));
    expect(elector.lease?.term).toBe(term);
    await elector.stop();
    expect(probe.sent.filter((s) => s === `resign:${term}`)).toHaveLength(1);
  });

  it('stop() while leading: the loop sends exactly one resignation for the term, and nothing after it', async () => {
    const { probe, elector, term } = await probedLeader();
    await vi.waitFor(() => expect(probe.sent.filter((s) => s.startsWith('renew')).length).toBeGreaterThan(1));
    await elector.stop();
    expect(probe.sent.filter((s) => s === `resign:${term}`)).toHaveLength(1);
    expect(probe.sent.at(-1)).toBe(`resign:${term}`);
    expect(probe.maxInFlight()).toBe(1);
  });
});
