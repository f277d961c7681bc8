/** Observability: hooks see every outcome, errors carry their cause, OpenTelemetry mapping. */
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createElector, ElectorError, type ElectorHooks, type MeterLike, openTelemetryHooks } from '../src/index.js';
import { type Connection, connect, createTestDatabase } from './support/db.js';

let conn: Connection;
beforeAll(async () => {
  conn = connect('postgres.js', await createTestDatabase());
});
afterAll(() => conn.close());

/** A meter that keeps what it is given (the OpenTelemetry SDK's job in production). */
function recordingMeter() {
  const points: { name: string; value: number; attributes: Record<string, string | number> }[] = [];
  const meter: MeterLike = {
    createCounter: (name) => ({ add: (value, attributes = {}) => void points.push({ name, value, attributes }) }),
    createHistogram: (name) => ({ record: (value, attributes = {}) => void points.push({ name, value, attributes }) }),
  };
  return { meter, points };
}

it('hooks see elections, renewals, gains and losses; a throwing hook disturbs nothing', async () => {
  const calls: string[] = [];
  const hooks: ElectorHooks = {
    election: (outcome) => void calls.push(`election:${outcome}`),
    renewal: (outcome) => {
      calls.push(`renewal:${outcome}`);
      throw new Error('broken metrics backend');
    },
    gained: (term) => void calls.push(`gained:${term}`),
    lost: (term, reason) => void calls.push(`lost:${term}:${reason}`),
  };
  const e = createElector(conn.db, { name: 'hooks', ttl: 1_000, renewInterval: 100, safetyMargin: 200, hooks });
  await e.start();
  const term = e.lease!.term;
  await vi.waitFor(() => expect(calls.filter((c) => c === 'renewal:ok').length).toBeGreaterThanOrEqual(2));
  expect(e.isLeader).toBe(true);
  await e.stop();
  expect(calls[0]).toBe('election:won');
  expect(calls[1]).toBe(`gained:${term}`);
  expect(calls.at(-1)).toBe(`lost:${term}:stopped`);
});

it('handled errors reach the error hook as ElectorError with the driver error as cause', async () => {
  const bare = connect('postgres.js', await createTestDatabase({ migrated: false }));
  const errors: ElectorError[] = [];
  try {
    const e = createElector(bare.db, { name: 'hooks-error', hooks: { error: (error) => void errors.push(error as ElectorError) } });
    await expect(e.start()).rejects.toThrow();
  } finally {
    await bare.close();
  }
  // The missing table is fatal at start (a typed rejection), not a retried error; a dropped
  // connection is retried and reported:
  const flaky = connect('postgres.js', 'postgres://nobody:x@127.0.0.1:1/none');
  const e = createElector(flaky.db, {
    name: 'hooks-error',
    listen: false,
    hooks: { error: (error) => void errors.push(error as ElectorError) },
  });
  await e.start();
  await e.stop();
  await flaky.close();
  expect(errors.length).toBeGreaterThan(0);
  expect(errors[0]).toBeInstanceOf(ElectorError);
  expect(errors[0]!.operation).toBe('election');
  // The cause chain leads to the driver's own error (Drizzle wraps it as DrizzleQueryError).
  const codes: unknown[] = [];
  for (let e: unknown = errors[0]!.cause; e; e = (e as { cause?: unknown }).cause) codes.push((e as { code?: unknown }).code);
  expect(codes).toContain('ECONNREFUSED');
});

it('openTelemetryHooks records statements, leadership changes and the handoff latency', async () => {
  const { meter, points } = recordingMeter();
  const hooks = openTelemetryHooks(meter, { election: 'otel' });
  const options = { name: 'otel', ttl: 60_000, renewInterval: 20_000, safetyMargin: 1_000, hooks };
  const a = createElector(conn.db, { ...options, id: 'a' });
  const b = createElector(conn.db, { ...options, id: 'b' });
  await a.start();
  await b.start();
  await new Promise((r) => setTimeout(r, 200)); // b settles into its sleep: only the notification can wake it
  await a.stop();
  await b.waitForLeadership();
  await b.stop();
  const names = new Set(points.map((p) => p.name));
  expect(names).toEqual(
    new Set([
      'drizzle_leader.statements',
      'drizzle_leader.statement.duration',
      'drizzle_leader.leadership.changes',
      'drizzle_leader.handoff.duration',
    ]),
  );
  const handoff = points.filter((p) => p.name === 'drizzle_leader.handoff.duration');
  expect(handoff).toHaveLength(1);
  expect(handoff[0]!.value).toBeLessThan(1_000);
  expect(handoff[0]!.attributes).toEqual({ election: 'otel' });
  expect(points.filter((p) => p.name === 'drizzle_leader.leadership.changes').map((p) => p.attributes.change)).toEqual([
    'gained',
    'lost',
    'gained',
    'lost',
  ]);
});
