/**
 * How fast a member that joins gets its share, in renew intervals, against the real server
 * through both drivers: the old members shed at the join's own NOTIFY (no hysteresis wait for
 * an announced join), and the newcomer elects each name as its `resigned` NOTIFY arrives. The
 * bound asserted is structural and generous (4 intervals); the measured numbers are printed.
 * After the share is taken nothing moves again: no oscillation.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createElectorGroup, type ElectorGroup, type GroupEvent, SILENT_LOGGER } from '../../src/index.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from '../support/db.js';
import { sleep } from '../support/elector.js';

const RENEW = 500;
const TIMING = { ttl: 3_000, renewInterval: RENEW, safetyMargin: 500 } as const;
const NAMES = 30;
const JOINS = 5;
/** Generous on purpose (two shared cores): today's joins take under one interval. */
const BOUND_INTERVALS = 4;

let url: string;
beforeAll(async () => {
  url = await createTestDatabase();
});

describe.each(DRIVERS)('join speed (%s)', (driver) => {
  let conns: Connection[] = [];
  let groups: ElectorGroup[] = [];
  afterEach(async () => {
    await Promise.all(groups.map((g) => g.stop()));
    groups = [];
  });
  afterAll(async () => {
    await Promise.all(conns.map((c) => c.close()));
    conns = [];
  });

  it(`a joining member leads its share within ${BOUND_INTERVALS} renew intervals, and nothing moves after`, async () => {
    const group = `join-${driver}`;
    const names = Array.from({ length: NAMES }, (_, i) => `${group}-job-${String(i).padStart(2, '0')}`);
    // Each member on a pool of its own, as in separate processes.
    const member = (id: string) => {
      const conn = connect(driver, url, { max: 4 });
      conns.push(conn);
      const g = createElectorGroup(conn.db, { names, group, id, logger: SILENT_LOGGER, ...TIMING });
      groups.push(g);
      return g;
    };
    const settled = (members: ElectorGroup[]) => {
      const counts = members.map((m) => m.leaderships().size);
      const once = names.every((n) => members.filter((m) => m.leads(n)).length === 1);
      return once && Math.max(...counts) - Math.min(...counts) <= 1;
    };
    const waitSettled = async (members: ElectorGroup[], withinMs: number) => {
      const deadline = performance.now() + withinMs;
      while (!settled(members)) {
        if (performance.now() > deadline) return false;
        await sleep(5);
      }
      return true;
    };

    const base = [member(`${group}-a`), member(`${group}-b`), member(`${group}-c`)];
    await Promise.all(base.map((m) => m.start()));
    expect(await waitSettled(base, 15_000)).toBe(true);

    const intervals: number[] = [];
    for (let i = 0; i < JOINS; i++) {
      const moves: GroupEvent[] = [];
      const unsubscribe = base.map((m) => m.subscribe((e) => void (e.type === 'lost' && e.reason === 'rebalanced' && moves.push(e))));
      const joiner = member(`${group}-join-${i}`);
      const all = [...base, joiner];
      const startedAt = performance.now();
      await joiner.start();
      const ok = await waitSettled(all, 10 * RENEW);
      const tookMs = performance.now() - startedAt;
      expect(ok).toBe(true);
      intervals.push(tookMs / RENEW);
      // Quotas of 30 over 4 are 8, 8, 7, 7: the joiner has at least 7.
      expect(joiner.leaderships().size).toBeGreaterThanOrEqual(7);
      // Settled means settled: across two more intervals no name is shed again.
      const shedBefore = moves.length;
      await sleep(2 * RENEW);
      expect(moves.length).toBe(shedBefore);
      expect(settled(all)).toBe(true);
      for (const off of unsubscribe) off();
      // A graceful leave hands the joiner's names back before the next join.
      await joiner.stop();
      groups = groups.filter((g) => g !== joiner);
      expect(await waitSettled(base, 10 * RENEW)).toBe(true);
    }
    const sorted = [...intervals].sort((a, b) => a - b);
    console.log(
      `join speed (${driver}, ${NAMES} names, 3 → 4 members, renew ${RENEW} ms, n = ${JOINS}): ` +
        `median ${sorted[Math.floor(JOINS / 2)]!.toFixed(2)}, max ${sorted.at(-1)!.toFixed(2)} intervals ` +
        `[${intervals.map((x) => x.toFixed(2)).join(', ')}]`,
    );
    for (const x of intervals) expect(x).toBeLessThanOrEqual(BOUND_INTERVALS);
  });
});
