/**
 * The edges of issue 11 that need no fault proxy: forced handoffs confirmed by the database
 * and scoped to one table, a stale request, calls on a stopped elector, inputs that pass a
 * type check but cannot work, and the first moments of a new elector.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createElectorWithStore } from '../src/dev/testing.js';
import {
  createElector,
  createLeaderTable,
  type Elector,
  ElectorStoppedError,
  InvalidOptionError,
  LeaseTableMissingError,
  requestResign,
} from '../src/index.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from './support/db.js';
import { recorded } from './support/elector.js';

const TIMING = { ttl: 1_500, renewInterval: 200, safetyMargin: 300 } as const;

let url: string;
let admin: Connection;
const electors: Elector[] = [];
beforeAll(async () => {
  url = await createTestDatabase();
  admin = connect('postgres.js', url, { max: 2 });
});
afterAll(async () => {
  await Promise.all(electors.map((e) => e.stop()));
  await admin.close();
});

const track = (elector: Elector) => recorded(elector, electors);

describe.each(DRIVERS)('forced handoffs (%s)', (driver) => {
  let conn: Connection;
  beforeAll(() => {
    conn = connect(driver, url);
  });
  afterAll(() => conn.close());

  it('a request for one table never deposes the leader of the same name in another table', async () => {
    const ops = `ops_${driver.replace(/\W/g, '_')}`;
    await admin.query(`create schema ${ops}`);
    await admin.query(`create table ${ops}.leases (like public.river_leader including all)`);
    const { table } = createLeaderTable({ schema: ops, table: 'leases' });
    const name = `billing-${driver}`;
    const inDefault = createElector(conn.db, { name, ...TIMING });
    const inOps = createElector(conn.db, { name, table, ...TIMING });
    const defaultEvents = track(inDefault);
    const opsEvents = track(inOps);
    await inDefault.start();
    await inOps.start();
    const opsLease = await inOps.waitForLeadership({ signal: AbortSignal.timeout(5_000) });
    await inDefault.waitForLeadership({ signal: AbortSignal.timeout(5_000) });
    expect(await requestResign(conn.db, { name, table })).toMatchObject({ term: opsLease.term });
    await vi.waitFor(() => expect(opsEvents).toContainEqual(expect.objectContaining({ type: 'lost', reason: 'resigned' })), {
      timeout: 2_000,
    });
    await new Promise((r) => setTimeout(r, 3 * TIMING.renewInterval));
    expect(defaultEvents.filter((e) => e.type === 'lost')).toEqual([]);
    expect(inDefault.isLeader).toBe(true);
  });

  it('a request that reaches the leader without its notification still takes effect at the next renewal', async () => {
    const name = `silent-request-${driver}`;
    const leader = createElector(conn.db, { name, ...TIMING, listen: false });
    const events = track(leader);
    await leader.start();
    const term = leader.lease!.term;
    await requestResign(conn.db, { name, term });
    await vi.waitFor(() => expect(events).toContainEqual({ type: 'lost', term, reason: 'resigned' }), { timeout: 2_000 });
  });

  it('a stale request (for a term lost meanwhile) never deposes a later term', async () => {
    const name = `stale-request-${driver}`;
    let stall: Promise<void> | null = null;
    const elector = createElectorWithStore(conn.db, { name, ...TIMING }, (store) => ({
      ...store,
      renew: async (input, deadline, onLate) => {
        if (stall) await stall; // renewals hang: trust runs out
        return store.renew(input, deadline, onLate);
      },
    }));
    const events = track(elector);
    await elector.start();
    const first = elector.lease!.term;
    let release!: () => void;
    stall = new Promise((r) => (release = r));
    await requestResign(conn.db, { name, term: first });
    await vi.waitFor(() => expect(events).toContainEqual({ type: 'lost', term: first, reason: 'trust-expired' }), { timeout: 3_000 });
    stall = null;
    release();
    await vi.waitFor(() => expect(elector.isLeader).toBe(true), { timeout: 3_000 });
    const second = elector.lease!.term;
    expect(second).toBeGreaterThan(first);
    await new Promise((r) => setTimeout(r, 5 * TIMING.renewInterval));
    expect(events.filter((e) => e.type === 'lost' && e.term === second)).toEqual([]);
    expect(elector.lease?.term).toBe(second);
  });
});

describe('a stopped elector', () => {
  const conn = () => connect('postgres.js', url);

  it('waitForLeadership() rejects with ElectorStoppedError: pending at stop, called after stop', async () => {
    const holder = createElector(conn().db, { name: 'stopped-wait', id: 'holder', ...TIMING });
    const follower = createElector(conn().db, { name: 'stopped-wait', id: 'follower', ...TIMING });
    track(holder);
    track(follower);
    await holder.start();
    await follower.start();
    const pending = follower.waitForLeadership();
    await follower.stop();
    await expect(pending).rejects.toBeInstanceOf(ElectorStoppedError);
    await expect(follower.waitForLeadership()).rejects.toBeInstanceOf(ElectorStoppedError);
  });

  it('waitForLeadership() rejects after start() rejected for a missing table, and runWhileLeader throws', async () => {
    const { table } = createLeaderTable({ schema: 'nowhere', table: 'missing' });
    const elector = createElector(conn().db, { name: 'missing', table, ...TIMING });
    track(elector);
    await expect(elector.start()).rejects.toBeInstanceOf(LeaseTableMissingError);
    await expect(elector.waitForLeadership()).rejects.toBeInstanceOf(ElectorStoppedError);
    expect(() => elector.runWhileLeader(() => {})).toThrow(ElectorStoppedError);
  });
});

describe('inputs that pass a type check but cannot work', () => {
  const db = () => connect('postgres.js', url).db;

  it.each([
    ['name', { name: 'a\uD800b' }, /lone UTF-16 surrogates/],
    ['id', { id: '\uDC00' }, /lone UTF-16 surrogates/],
    ['ttl', { ttl: 3, renewInterval: 1, safetyMargin: 1 }, /from 500 to/],
    ['ttl', { ttl: 15, renewInterval: 5, safetyMargin: 1 }, /times are in milliseconds: for 15 seconds write 15000/],
    ['renewInterval', { renewInterval: 5 }, /from 50 to/],
  ])('refuses %s %j with a typed error that says what is allowed', (option, options, message) => {
    expect(() => createElector(db(), options)).toThrow(InvalidOptionError);
    expect(() => createElector(db(), options)).toThrow(new RegExp(`"${option}"`));
    expect(() => createElector(db(), options)).toThrow(message);
  });

  it('accepts names with well-formed astral characters', () => {
    expect(createElector(db(), { name: 'job-🚀', ...TIMING }).options.name).toBe('job-🚀');
  });
});

describe.each(DRIVERS)('the first moments (%s)', (driver) => {
  it('a new follower elects once at start, not again when its LISTEN connection comes up', async () => {
    const conn = connect(driver, url);
    const name = `first-moments-${driver}`;
    const holder = createElector(conn.db, { name, id: 'holder', ttl: 15_000, renewInterval: 5_000, safetyMargin: 1_000 });
    const follower = createElector(conn.db, { name, id: 'follower', ttl: 15_000, renewInterval: 5_000, safetyMargin: 1_000 });
    track(holder);
    track(follower);
    await holder.start();
    await follower.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(follower.stats.elections).toEqual({ won: 0, denied: 1, failed: 0 });
    expect(holder.stats.renewals).toEqual({ ok: 0, denied: 0, failed: 0 });
  });

  it('LISTEN commands never overlap on one connection (no node-postgres concurrent-query DeprecationWarning)', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => void warnings.push(warning.message);
    process.on('warning', onWarning);
    const conn = connect(driver, url);
    try {
      const many = Array.from({ length: 12 }, (_, i) => createElector(conn.db, { name: `channels-${i}`, channel: `chan_${i}`, ...TIMING }));
      for (const e of many) track(e);
      await Promise.all(many.map((e) => e.start()));
      await new Promise((r) => setTimeout(r, 300));
      await Promise.all(many.map((e) => e.stop()));
      expect(warnings.filter((w) => /already executing a query/.test(w))).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
