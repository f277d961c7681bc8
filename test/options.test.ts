import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import {
  createElector,
  createLeaderTable,
  ELECTOR_DEFAULTS,
  type ElectorOptions,
  InvalidOptionError,
  type LeaderDatabase,
  parseNotification,
  riverLeader,
} from '../src/index.js';

/** The options an elector resolves to; nothing touches the database before start(). */
const resolve = (options?: ElectorOptions) => createElector(drizzle.mock() as unknown as LeaderDatabase, options).options;

describe('options are merged once and validated at the door', () => {
  it('defaults are frozen and consistent', () => {
    expect(Object.isFrozen(ELECTOR_DEFAULTS)).toBe(true);
    const resolved = resolve();
    expect(resolved).toMatchObject({
      name: 'default',
      ttl: 15_000,
      renewInterval: 5_000,
      safetyMargin: 1_000,
      listen: true,
      channel: 'river_leadership',
    });
    expect(resolved.table).toBe(riverLeader);
    expect(resolved.id).toMatch(/^.+:\d+:[0-9a-f]{8}$/);
    expect(resolve().id).not.toBe(resolved.id);
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['ttl', { ttl: 0 }, /"ttl": got 0; allowed: a finite number/],
    ['ttl', { ttl: Number.NaN }, /"ttl": got NaN/],
    ['ttl', { ttl: '15000' }, /"ttl": got "15000"/],
    ['renewInterval', { renewInterval: -1 }, /"renewInterval": got -1/],
    ['safetyMargin', { safetyMargin: Number.POSITIVE_INFINITY }, /"safetyMargin": got Infinity/],
    [
      'ttl',
      { ttl: 5_000, renewInterval: 5_000 },
      /"ttl": got 5000; allowed: a number of ms greater than renewInterval \+ safetyMargin \(5000 \+ 1000\)/,
    ],
    ['ttl', { ttl: 6_000 }, /renewInterval \+ safetyMargin/],
    ['name', { name: '' }, /"name": got ""; allowed: a string of 1 to 127 characters/],
    ['name', { name: 'n'.repeat(128) }, /"name"/],
    ['id', { id: 42 }, /"id": got 42/],
    ['id', { id: 'a\0b' }, /"id"/],
    ['listen', { listen: 'yes' }, /"listen": got "yes"; allowed: true, false, or { url/],
    ['listen', { listen: { url: 'mysql://x' } }, /"listen": got an object/],
    ['channel', { channel: 'c'.repeat(64) }, /"channel".*63 bytes/],
    ['channel', { channel: '' }, /"channel"/],
    ['table', { table: {} }, /"table": got an object; allowed: riverLeader or a table from createLeaderTable\(\)/],
    ['logger', { logger: console.log }, /"logger": got a function/],
    ['ttlMs', { ttlMs: 5 }, /"ttlMs": got 5; allowed: one of name, id, ttl/],
  ];
  it.each(bad)('rejects a bad %s with a typed error naming option, value and what is allowed', (option, options, message) => {
    let error: unknown;
    try {
      resolve(options);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).option).toBe(option);
    expect((error as Error).message).toMatch(message);
  });

  it('counts characters like Postgres does (code points, not UTF-16 units)', () => {
    expect(resolve({ name: '🚀'.repeat(127) }).name).toHaveLength(254);
    expect(() => resolve({ name: '🚀'.repeat(128) })).toThrow(InvalidOptionError);
  });

  it('accepts a custom table and a pino-shaped logger', () => {
    const { table } = createLeaderTable({ schema: 'ops', table: 'leases' });
    const logger = { debug() {}, info() {}, warn() {}, error() {} };
    expect(resolve({ table, logger }).table).toBe(table);
  });

  it('createElector validates before touching the database', () => {
    // A client that would fail on first use: validation must throw before any query.
    const db = drizzle(postgres('postgres://nobody@127.0.0.1:1/none'));
    expect(() => createElector(db, { ttl: -5 })).toThrow(InvalidOptionError);
  });
});

describe('notification payloads are parsed defensively', () => {
  it('accepts our versioned payloads', () => {
    expect(parseNotification('{"v":1,"action":"resigned","name":"a","leaderId":"x","term":3}')).toEqual({
      v: 1,
      action: 'resigned',
      name: 'a',
      leaderId: 'x',
      term: 3,
    });
    expect(parseNotification('{"v" : 1, "action" : "request_resign", "name" : "a"}')).toEqual({
      v: 1,
      action: 'request_resign',
      name: 'a',
    });
  });

  it.each([
    ['not json', 'nope'],
    ['empty', ''],
    ['array', '[1]'],
    ['null', 'null'],
    ['wrong version', '{"v":2,"action":"resigned","name":"a"}'],
    ['unknown action', '{"v":1,"action":"promote","name":"a"}'],
    ['missing name', '{"v":1,"action":"resigned"}'],
    ['bad term', '{"v":1,"action":"resigned","name":"a","term":-1}'],
    ['fractional term', '{"v":1,"action":"resigned","name":"a","term":1.5}'],
    ['bad leader id', '{"v":1,"action":"resigned","name":"a","leaderId":{}}'],
    ['oversized', `{"v":1,"action":"resigned","name":"${'a'.repeat(8000)}"}`],
    ['proto pollution', '{"__proto__":{"v":1},"action":"resigned","name":"a"}'],
  ])('ignores %s', (_label, payload) => {
    expect(parseNotification(payload)).toBeNull();
  });
});
