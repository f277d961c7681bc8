/**
 * Lease-checked transactions per name (`group.transaction`, `group.leaseHeld`) and the group's
 * ordered drain, against a real server through both drivers: the single elector's guarantees
 * for every name a member leads, the member's own batched renewals never held up by them, and a
 * handover (stop, removeName, a requested resignation) that waits for the name's work before
 * the successor's term begins.
 */
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { leaseStore } from '../../src/dev/testing.js';
import {
  createElector,
  createElectorGroup,
  type Elector,
  type ElectorGroup,
  type ElectorGroupOptions,
  type GroupEvent,
  LeadershipLostError,
  type Logger,
  listLeases,
  requestResign,
  SILENT_LOGGER,
} from '../../src/index.js';
import { type Connection, connect, DRIVERS } from '../support/db.js';
import { sleep } from '../support/elector.js';
import { createWorkLogDatabase, expireLease as expireLeaseOf, gate, loggedWork, pendingAfter } from '../support/lease-checked.js';

let url: string;
beforeAll(async () => {
  url = await createWorkLogDatabase();
});

const TIMING = { ttl: 3_000, renewInterval: 300, safetyMargin: 500 } as const;

/** A logger that keeps the warnings, for the drainTimeout log line. */
function recordingLogger(): Logger & { warnings: { fields: Record<string, unknown>; message: string }[] } {
  const warnings: { fields: Record<string, unknown>; message: string }[] = [];
  return {
    warnings,
    debug() {},
    info() {},
    error() {},
    warn(fields, message) {
      warnings.push({ fields: fields as Record<string, unknown>, message });
    },
  };
}

describe.each(DRIVERS)('group lease-checked transactions and ordered drain (%s)', (driver) => {
  let conn: Connection;
  let admin: Connection;
  let groups: ElectorGroup[] = [];
  let electors: Elector[] = [];
  let counter = 0;
  let group: string;
  beforeAll(() => {
    conn = connect(driver, url, { max: 8 });
    admin = connect('postgres.js', url, { max: 4 });
  });
  afterAll(async () => {
    await conn.close();
    await admin.close();
  });
  afterEach(async () => {
    await Promise.all([...groups.map((g) => g.stop()), ...electors.map((e) => e.stop())]);
    groups = [];
    electors = [];
  });

  const namesFor = (n: number) => {
    group = `${driver}-tx${++counter}`;
    return Array.from({ length: n }, (_, i) => `${group}-job-${i}`);
  };
  const member = (names: readonly string[], options: Partial<ElectorGroupOptions> = {}) => {
    const g = createElectorGroup(conn.db, { names, group, id: `${group}-member`, logger: SILENT_LOGGER, ...TIMING, ...options });
    groups.push(g);
    return g;
  };
  const single = (name: string, id: string, options: Partial<ElectorGroupOptions> = {}) => {
    const e = createElector(conn.db, { name, id, logger: SILENT_LOGGER, ...TIMING, ...options });
    electors.push(e);
    return e;
  };
  const leading = async (g: ElectorGroup, names: readonly string[]) => {
    await g.start();
    await vi.waitFor(() => expect([...g.leaderships().keys()].sort()).toEqual([...names].sort()), { timeout: 5_000, interval: 10 });
  };
  const logged = (name: string) => loggedWork(admin, name);
  const stored = async (name: string) => (await listLeases(admin.db)).find((r) => r.name === name) ?? null;
  const expireLease = (name: string) => expireLeaseOf(admin, name);

  it('commits the work of the term that leads the name, and leaseHeld(name) lets a single write through', async () => {
    const names = namesFor(2);
    const g = member(names);
    await leading(g, names);
    const [first, second] = names as [string, string];
    const term = await g.transaction(first, async (tx, lease, signal) => {
      expect(signal.aborted).toBe(false);
      expect(lease.name).toBe(first);
      await tx.execute(sql`insert into work_log (name, term, note) values (${first}, ${lease.term}, 'tx')`);
      return lease.term;
    });
    expect(term).toBe(g.lease(first)!.term);
    expect(await logged(first)).toEqual([{ term, note: 'tx' }]);
    const secondTerm = g.lease(second)!.term;
    const inserted = await conn.db.execute(
      sql`insert into work_log (name, term, note) select ${second}, ${secondTerm}, 'single' where ${g.leaseHeld(second)} returning id`,
    );
    expect(Array.isArray(inserted) ? inserted.length : (inserted as { rowCount: number }).rowCount).toBe(1);
    expect(await logged(second)).toEqual([{ term: secondTerm, note: 'single' }]);
  });

  it('refuses with LeadershipLostError, before the work runs, for a name this member does not lead', async () => {
    const names = namesFor(2);
    const holder = single(names[0]!, `${group}-holder`);
    await holder.start();
    expect(holder.isLeader).toBe(true);
    const g = member(names);
    await leading(g, [names[1]!]);
    let ran = false;
    const work = async () => {
      ran = true;
    };
    for (const name of [names[0]!, `${group}-not-in-the-set`]) {
      const error = await g.transaction(name, work).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeadershipLostError);
      expect((error as LeadershipLostError).reason).toBe('not-leader');
      expect((error as LeadershipLostError).election).toBe(name);
      expect(() => g.leaseHeld(name)).toThrow(LeadershipLostError);
    }
    expect(ran).toBe(false);
  });

  it('a takeover of the name waits for its open transaction, which still commits; the new term comes after it', async () => {
    const names = namesFor(1);
    const name = names[0]!;
    const g = member(names);
    await leading(g, names);
    const oldTerm = g.lease(name)!.term;
    const hold = gate();
    const locked = gate();
    const work = g.transaction(name, async (tx, lease) => {
      locked.open();
      await hold.opened;
      await tx.execute(sql`insert into work_log (name, term, note) values (${name}, ${lease.term}, 'old')`);
    });
    await locked.opened;
    await expireLease(name);
    const takeover = leaseStore(admin.db).elect({ name, leaderId: `${group}-new`, ttlMs: 60_000 });
    expect(await pendingAfter(takeover, 500)).toBe(true);
    hold.open();
    await work;
    // Once the lock is gone the waiting takeover and the member's own next election race for the
    // expired row (both legitimate); either way the term that follows is a new, larger one.
    const result = await takeover;
    if (result.won) expect(result.lease.term).toBeGreaterThan(oldTerm);
    await vi.waitFor(async () => expect((await stored(name))?.term).toBeGreaterThan(oldTerm), { timeout: 5_000, interval: 20 });
    expect(await logged(name)).toEqual([{ term: oldTerm, note: 'old' }]);
  });

  it('a transaction longer than the ttl costs the name nothing: the batched renewal goes through its lock', async () => {
    const names = namesFor(2);
    const fast = { ttl: 1_000, renewInterval: 100, safetyMargin: 200 } as const;
    const g = member(names, fast);
    const events: GroupEvent[] = [];
    g.subscribe((e) => void events.push(e));
    await leading(g, names);
    // A rival candidate for the name keeps asking: it must keep being refused.
    const rival = single(names[0]!, `${group}-rival`, fast);
    await rival.start();
    const name = names[0]!;
    const term = g.lease(name)!.term;
    const before = (await stored(name))!.expiresAt.getTime();
    const samples: boolean[] = [];
    await g.transaction(
      name,
      async (tx, lease) => {
        for (let i = 0; i < 30; i++) {
          samples.push(g.leads(name));
          await sleep(50);
        }
        await tx.execute(sql`insert into work_log (name, term, note) values (${name}, ${lease.term}, 'long')`);
      },
      { timeout: 5_000 },
    );
    expect(samples.every(Boolean)).toBe(true); // 1.5 s inside the transaction, with a 1 s lease
    expect(g.lease(name)!.term).toBe(term);
    const after = await stored(name);
    expect(after).toMatchObject({ leaderId: g.id, term });
    expect(after!.expiresAt.getTime()).toBeGreaterThan(before + 1_000); // renewed while the lock was held
    expect(events.filter((e) => e.type === 'lost')).toEqual([]);
    expect(rival.isLeader).toBe(false);
    expect(await logged(name)).toEqual([{ term, note: 'long' }]);
  });

  it('stop() aborts the task, keeps the lease until the 1 s task has returned, then resigns: the successor gains after', async () => {
    const names = namesFor(1);
    const name = names[0]!;
    const g = member(names);
    const order: string[] = [];
    const handle = g.runWhileLeader(async (_name, signal) => {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      order.push('aborted');
      await sleep(1_000);
      order.push('task returned');
    });
    await leading(g, names);
    await vi.waitFor(() => expect(handle.running).toBe(true), { timeout: 2_000, interval: 10 });
    const term = g.lease(name)!.term;
    const successor = single(name, `${group}-successor`);
    successor.subscribe((e) => void (e.type === 'gained' && order.push('successor gained')));
    await successor.start();
    expect(successor.isLeader).toBe(false);
    const stopping = g.stop();
    expect(g.leads(name)).toBe(false);
    // While the task drains the lease stays this member's term, renewed.
    await vi.waitFor(() => expect(order).toEqual(['aborted']), { interval: 10 });
    expect(await stored(name)).toMatchObject({ leaderId: g.id, term });
    await stopping;
    await handle.done;
    expect(handle.running).toBe(false);
    await vi.waitFor(() => expect(successor.isLeader).toBe(true), { timeout: 5_000, interval: 10 });
    await vi.waitFor(() => expect(order).toEqual(['aborted', 'task returned', 'successor gained']), { interval: 10 });
    expect(successor.lease!.term).toBeGreaterThan(term);
  });

  it('removeName and a requested resignation each drain that name before resigning it; the other names stay', async () => {
    const names = namesFor(3);
    const [removed, asked, kept] = names as [string, string, string];
    const g = member(names);
    const returned: string[] = [];
    g.runWhileLeader(async (name, signal) => {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      await sleep(500);
      returned.push(name);
    });
    await leading(g, names);
    const terms = new Map([...g.leaderships()].map(([name, lease]) => [name, lease.term]));
    expect(g.removeName(removed)).toBe(true);
    expect(g.leads(removed)).toBe(false);
    expect(await stored(removed)).toMatchObject({ leaderId: g.id, term: terms.get(removed) });
    await vi.waitFor(() => expect(returned).toEqual([removed]), { timeout: 5_000, interval: 10 });
    await vi.waitFor(async () => expect(await stored(removed)).toBeNull(), { timeout: 5_000, interval: 20 });

    expect(await requestResign(admin.db, { name: asked })).toMatchObject({ term: terms.get(asked) });
    await vi.waitFor(() => expect(g.leads(asked)).toBe(false), { timeout: 5_000, interval: 10 });
    expect(await stored(asked)).toMatchObject({ leaderId: g.id, term: terms.get(asked) });
    // Released only once the task returned; then the member campaigns for it again, with a new term.
    await vi.waitFor(() => expect(returned).toEqual([removed, asked]), { timeout: 5_000, interval: 10 });
    await vi.waitFor(() => expect(g.lease(asked)?.term).toBeGreaterThan(terms.get(asked)!), { timeout: 5_000, interval: 10 });
    expect(g.lease(kept)!.term).toBe(terms.get(kept));
  });

  it('a task that overruns drainTimeout is logged with its name, and the name is resigned anyway', async () => {
    const names = namesFor(1);
    const name = names[0]!;
    const logger = recordingLogger();
    const g = member(names, { drainTimeout: 200, logger });
    const finishTask = gate();
    g.runWhileLeader(async function stubborn() {
      await finishTask.opened; // ignores its signal
    });
    await leading(g, names);
    const term = g.lease(name)!.term;
    await g.stop();
    const overrun = logger.warnings.filter((w) => w.message.includes('did not finish within drainTimeout (200 ms)'));
    expect(overrun).toEqual([
      {
        fields: { name, term, task: 'runWhileLeader task "stubborn"', drainTimeout: 200 },
        message: expect.stringContaining('giving up the lease anyway'),
      },
    ]);
    expect(await stored(name)).toBeNull();
    finishTask.open();
  });
});
