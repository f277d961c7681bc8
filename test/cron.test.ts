/**
 * The node-cron run coordinator against real PostgreSQL, on both drivers: real node-cron
 * schedulers (distributed tasks, each with its own connection) run every fire exactly once;
 * claims for one fire asked seconds apart (clock skew) refuse all but the first; an unreachable
 * database skips the fire (fail-closed); cleanup deletes only expired claim rows.
 */
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import cron, { type ScheduledTask, type TaskContext } from 'node-cron';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createLeaderTable,
  createRunCoordinator,
  InvalidOptionError,
  listLeases,
  RUN_COORDINATOR_DEFAULTS,
  RunClaimError,
  SILENT_LOGGER,
} from '../src/index.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from './support/db.js';

let url: string;
beforeAll(async () => {
  url = await createTestDatabase();
});

/** A logger that keeps what it is told, in both node-cron's shape and ours. */
function recordingLogger() {
  const lines: string[] = [];
  const keep = (level: string) => (a: unknown, b?: unknown) => {
    lines.push(`${level} ${typeof b === 'string' ? b : a instanceof Error ? a.message : String(a)}`);
  };
  return { lines, logger: { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') } };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.each(DRIVERS)('node-cron run coordinator (%s)', (driver) => {
  let admin: Connection;
  beforeAll(() => {
    admin = connect('postgres.js', url, { max: 1 });
  });
  afterAll(async () => {
    await admin.close();
  });

  it('four real node-cron schedulers, each on its own connection: every fire runs exactly once', { timeout: 40_000 }, async () => {
    const name = `every-second-${driver}`;
    const instances = ['a', 'b', 'c', 'd'];
    const ran = new Map<string, string[]>();
    const refused = new Map<string, string[]>();
    const terms = new Map<string, number | undefined>();
    const reasons = new Set<string>();
    const warnings = recordingLogger();
    const connections = instances.map(() => connect(driver, url, { max: 2 }));
    const coordinators = connections.map((c, i) => createRunCoordinator(c.db, { id: `instance-${instances[i]}`, logger: warnings.logger }));
    const tasks: ScheduledTask[] = instances.map((instance, i) => {
      const task = cron.createTask(
        '* * * * * *',
        async (context: TaskContext) => {
          const fire = context.date.toISOString();
          ran.set(fire, [...(ran.get(fire) ?? []), instance]);
          terms.set(fire, coordinators[i]!.termOf(`${name}:${fire}`));
          await sleep(300); // some work, so the run overlaps the other instances' claims
        },
        // node-cron's own 'missed execution' warnings on a busy machine are noise here: a missed
        // fire is simply not counted as answered by all four.
        { name, distributed: true, runCoordinator: coordinators[i]!, logger: { ...console, warn: () => {} } },
      );
      task.on('execution:skipped', (context) => {
        reasons.add(String(context.reason));
        const fire = context.date.toISOString();
        refused.set(fire, [...(refused.get(fire) ?? []), instance]);
      });
      return task;
    });
    try {
      for (const task of tasks) await task.start();
      const answeredByAll = () => [...ran.keys()].filter((fire) => (ran.get(fire)?.length ?? 0) + (refused.get(fire)?.length ?? 0) === 4);
      await vi.waitFor(() => expect(answeredByAll().length).toBeGreaterThanOrEqual(5), { timeout: 30_000, interval: 200 });
    } finally {
      for (const task of tasks) await task.destroy();
      await sleep(400); // let a run that had started finish before counting
      await Promise.all(coordinators.map((c) => c.settled()));
      await Promise.all(connections.map((c) => c.close()));
    }
    const fires = [...new Set([...ran.keys(), ...refused.keys()])];
    expect(fires.length).toBeGreaterThanOrEqual(5);
    for (const fire of fires) expect({ fire, runs: ran.get(fire)?.length ?? 0 }).toEqual({ fire, runs: 1 });
    // Each run knew its claim's fencing token, and every fire had a term of its own.
    const tokens = [...terms.values()];
    expect(tokens.every((t) => typeof t === 'number')).toBe(true);
    expect(new Set(tokens).size).toBe(tokens.length);
    // The claim rows name the instance that ran each fire.
    const rows = await admin.query<{ name: string; leader_id: string }>(
      `select name, leader_id from river_leader where name like $1 order by name`,
      [`drizzle-leader:cron:${name}:%`],
    );
    expect(rows.map((r) => [r.name.slice(`drizzle-leader:cron:${name}:`.length), r.leader_id])).toEqual(
      [...ran.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([fire, who]) => [fire, `instance-${who[0]}`]),
    );
    // They are the library's own rows: listLeases lists elections only, unless asked.
    expect((await listLeases(admin.db)).filter((l) => l.name.includes(name))).toEqual([]);
    expect((await listLeases(admin.db, { internal: true })).filter((l) => l.name.includes(name)).length).toBe(rows.length);
    expect(reasons).toEqual(new Set(['not-elected']));
    expect(warnings.lines).toEqual([]);
  });

  it('clock skew: claims for the same fire asked seconds apart refuse every later instance, past node-cron ttlMs', async () => {
    const a = connect(driver, url, { max: 1 });
    const b = connect(driver, url, { max: 1 });
    const ahead = createRunCoordinator(a.db, { id: 'clock-ahead', logger: SILENT_LOGGER });
    const behind = createRunCoordinator(b.db, { id: 'clock-behind', logger: SILENT_LOGGER });
    // node-cron's key names the scheduled time: both instances compute the same key, each when
    // its own clock reaches it, so an instance whose clock is 3 s behind asks 3 s later.
    const key = `skewed-${driver}:2030-01-01T00:00:00.000Z`;
    const shortLease = 1_000; // a task's distributedLease shorter than the skew
    try {
      expect(await ahead.shouldRun(key, shortLease)).toBe(true);
      await sleep(3_000);
      expect(await behind.cleanUp()).toBe(0); // the claim is not expired, so cleanup leaves it
      expect(await behind.shouldRun(key, shortLease)).toBe(false);
      expect(await ahead.shouldRun(key, shortLease)).toBe(false); // and a repeated ask, too
      const [row] = await admin.query<{ leader_id: string; held_s: number }>(
        `select leader_id, extract(epoch from expires_at - elected_at)::float8 as held_s from river_leader where name = $1`,
        [`drizzle-leader:cron:${key}`],
      );
      // Held for the retention (10 min by default), not node-cron's 1 s lease.
      expect(row).toEqual({ leader_id: 'clock-ahead', held_s: RUN_COORDINATOR_DEFAULTS.retention / 1000 });
    } finally {
      await Promise.all([ahead.settled(), behind.settled()]);
      await a.close();
      await b.close();
    }
  });

  it('a distributedLease longer than the retention holds the claim that long', async () => {
    const c = connect(driver, url, { max: 1 });
    const coordinator = createRunCoordinator(c.db, { retention: 60_000, logger: SILENT_LOGGER });
    try {
      expect(await coordinator.shouldRun(`long-lease-${driver}:2030-01-01T00:00:00.000Z`, 3_600_000)).toBe(true);
      const [row] = await admin.query<{ held_s: number }>(
        `select extract(epoch from expires_at - elected_at)::float8 as held_s from river_leader where name = $1`,
        [`drizzle-leader:cron:long-lease-${driver}:2030-01-01T00:00:00.000Z`],
      );
      expect(row!.held_s).toBe(3_600);
      // Infinity lengthens it to the longest a claim can be (about 24.8 days), never shortens it.
      expect(await coordinator.shouldRun(`endless-${driver}:2030-01-01T00:00:00.000Z`, Number.POSITIVE_INFINITY)).toBe(true);
      const [endless] = await admin.query<{ held_ms: number }>(
        `select (extract(epoch from expires_at - elected_at) * 1000)::float8 as held_ms from river_leader where name = $1`,
        [`drizzle-leader:cron:endless-${driver}:2030-01-01T00:00:00.000Z`],
      );
      expect(endless!.held_ms).toBe(2_147_483_647);
      // A key is a string: anything else is refused, typed, before any claim (node-cron then skips the fire).
      for (const key of [undefined, null, 42, {}, { toString: () => 'x' }]) {
        await expect(coordinator.shouldRun(key as never, 1_000)).rejects.toBeInstanceOf(InvalidOptionError);
      }
      expect(
        (await admin.query('select 1 from river_leader where name in ($1, $2)', ['drizzle-leader:cron:undefined', 'drizzle-leader:cron:x']))
          .length,
      ).toBe(0);
    } finally {
      await coordinator.settled();
      await c.close();
    }
  });

  it('fail-closed: with the database unreachable, shouldRun warns and throws, and node-cron skips the fire', {
    timeout: 20_000,
  }, async () => {
    const port = await closedPort();
    const down = connect(driver, `postgres://postgres:postgres@127.0.0.1:${port}/nowhere`, { max: 1 });
    const ours = recordingLogger();
    const coordinator = createRunCoordinator(down.db, { timeout: 2_000, logger: ours.logger });
    const key = `down-${driver}:2030-01-01T00:00:00.000Z`;
    const theirs = recordingLogger();
    let runs = 0;
    const skipped: string[] = [];
    const task = cron.createTask(
      '* * * * * *',
      () => {
        runs++;
      },
      { name: `down-${driver}`, distributed: true, runCoordinator: coordinator, logger: theirs.logger },
    );
    task.on('execution:skipped', (context) => void skipped.push(String(context.reason)));
    try {
      const error = await coordinator.shouldRun(key, 30_000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RunClaimError);
      expect((error as RunClaimError).key).toBe(key);
      expect(ours.lines).toContain('warn cron run claim failed; this instance skips the fire (fail-closed)');
      await task.start();
      await vi.waitFor(() => expect(skipped.length).toBeGreaterThanOrEqual(2), { timeout: 15_000, interval: 100 });
    } finally {
      await task.destroy();
      await down.close().catch(() => {});
    }
    expect(runs).toBe(0);
    expect(new Set(skipped)).toEqual(new Set(['coordinator-error']));
    expect(theirs.lines).toContain('error Run coordinator failed; skipping execution (fail-closed)');
  });

  it('cleanup deletes only expired claim rows, at most 1000 per statement', async () => {
    const c = connect(driver, url, { max: 1 });
    const coordinator = createRunCoordinator(c.db, { logger: SILENT_LOGGER });
    const p = `clean-${driver}`;
    const insert = (name: string, expiresIn: string) =>
      admin.query(
        `insert into river_leader (name, leader_id, elected_at, expires_at) values ($1, 'x', now() - interval '1 hour', now() + $2::interval)`,
        [name, expiresIn],
      );
    try {
      await admin.query(`delete from river_leader where starts_with(name, 'drizzle-leader:cron:')`);
      await insert(`drizzle-leader:cron:${p}:expired`, '-1 second');
      await insert(`drizzle-leader:cron:${p}:live`, '1 hour');
      await insert(`${p}-elector`, '-1 second'); // an expired election lease
      await insert(`cron:${p}`, '-1 second'); // an election named like a claim, outside the reserved namespace
      await insert(`drizzle-leader:group:${p}`, '-1 second');
      expect(await coordinator.cleanUp()).toBe(1);
      const left = await admin.query<{ name: string }>(`select name from river_leader where name like $1 order by name`, [`%${p}%`]);
      expect(left.map((r) => r.name).sort()).toEqual(
        [`drizzle-leader:cron:${p}:live`, `cron:${p}`, `drizzle-leader:group:${p}`, `${p}-elector`].sort(),
      );

      await admin.query(
        `insert into river_leader (name, leader_id, elected_at, expires_at)
         select 'drizzle-leader:cron:${p}:bulk-' || i, 'x', now() - interval '1 hour', now() - interval '1 second' from generate_series(1, 1500) i`,
      );
      expect(await coordinator.cleanUp()).toBe(1_000);
      expect(await coordinator.cleanUp()).toBe(500);
      expect(await coordinator.cleanUp()).toBe(0);
    } finally {
      await c.close();
    }
  });

  it('cleans up on its own after a claim, at most once per cleanupInterval; after retention and cleanup a fire is claimable again', async () => {
    const c = connect(driver, url, { max: 2 });
    const coordinator = createRunCoordinator(c.db, { retention: 1_000, cleanupInterval: 60_000, logger: SILENT_LOGGER });
    const p = `auto-${driver}`;
    const expired = (name: string) =>
      admin.query(
        `insert into river_leader (name, leader_id, elected_at, expires_at) values ($1, 'x', now() - interval '1 hour', now() - interval '1 second')`,
        [name],
      );
    const exists = async (name: string) => (await admin.query(`select 1 from river_leader where name = $1`, [name])).length === 1;
    try {
      await expired(`drizzle-leader:cron:${p}:first`);
      expect(await coordinator.shouldRun(`${p}:k1`, 0)).toBe(true); // the first claim starts a cleanup
      await coordinator.settled();
      expect(await exists(`drizzle-leader:cron:${p}:first`)).toBe(false);
      await expired(`drizzle-leader:cron:${p}:second`);
      expect(await coordinator.shouldRun(`${p}:k2`, 0)).toBe(true); // within cleanupInterval: no cleanup
      await coordinator.settled();
      expect(await exists(`drizzle-leader:cron:${p}:second`)).toBe(true);
      // The documented bound: once a claim is past its retention AND cleaned up, the key is free.
      await vi.waitFor(
        async () => {
          await coordinator.cleanUp();
          expect(await exists(`drizzle-leader:cron:${p}:k1`)).toBe(false);
        },
        { timeout: 10_000, interval: 250 },
      );
      expect(await coordinator.shouldRun(`${p}:k1`, 0)).toBe(true);
    } finally {
      await coordinator.settled();
      await c.close();
    }
  });

  it('long keys get a deterministic hashed name within the column limit; a table from createLeaderTable works', async () => {
    const c = connect(driver, url, { max: 1 });
    const d = connect(driver, url, { max: 1 });
    await admin.query(`create table if not exists cron_claims_${driver.replace(/\W/g, '')} (like river_leader including all)`);
    const { table } = createLeaderTable({ table: `cron_claims_${driver.replace(/\W/g, '')}` });
    const one = createRunCoordinator(c.db, { table, logger: SILENT_LOGGER });
    const two = createRunCoordinator(d.db, { table, logger: SILENT_LOGGER });
    const long = `${'report-'.repeat(40)}${driver}:2030-01-01T00:00:00.000Z`;
    const longToo = `${'report-'.repeat(40)}${driver}:2030-01-01T00:00:01.000Z`;
    try {
      expect(await one.shouldRun(long, 30_000)).toBe(true);
      expect(await two.shouldRun(long, 30_000)).toBe(false);
      expect(await two.shouldRun(longToo, 30_000)).toBe(true); // differs only past the readable head
      const rows = await admin.query<{ name: string }>(`select name from cron_claims_${driver.replace(/\W/g, '')} order by name`);
      expect(rows).toHaveLength(2);
      for (const { name } of rows) {
        expect(name.startsWith('drizzle-leader:cron:report-')).toBe(true);
        expect([...name].length).toBeLessThanOrEqual(127);
      }
    } finally {
      await Promise.all([one.settled(), two.settled()]);
      await c.close();
      await d.close();
    }
  });

  it('bad options throw InvalidOptionError naming the option', () => {
    const c = connect(driver, url, { max: 1 });
    const bad: [string, unknown][] = [
      ['retention', { retention: 30 }],
      ['retention', { retention: Number.NaN }],
      ['cleanupInterval', { cleanupInterval: 0 }],
      ['timeout', { timeout: -1 }],
      ['id', { id: '' }],
      ['id', { id: 'x'.repeat(128) }],
      ['table', { table: {} }],
      ['logger', { logger: { warn: () => {} } }],
      ['bogus', { bogus: 1 }],
      ['options', 'fast'],
    ];
    try {
      for (const [option, options] of bad) {
        const error = (() => {
          try {
            createRunCoordinator(c.db, options as never);
          } catch (e) {
            return e;
          }
        })();
        expect(error, option).toBeInstanceOf(InvalidOptionError);
        expect((error as InvalidOptionError).option, JSON.stringify(options)).toBe(option);
      }
      expect(() => createRunCoordinator(null as never)).toThrow(InvalidOptionError);
      expect(() => createRunCoordinator(c.db, { retention: 30 })).toThrow(/for 30 seconds write 30000/);
    } finally {
      void c.close();
    }
  });
});
