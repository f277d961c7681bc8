/**
 * Production hardening: statement and lock deadlines, pool starvation, least privilege, and
 * hostile identifiers.
 */

import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createElector,
  createLeaderTable,
  type ElectorError,
  InvalidOptionError,
  type LeaderDatabase,
  migrate,
  requestResign,
} from '../src/index.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from './support/db.js';

let url: string;
let admin: Connection;
beforeAll(async () => {
  url = await createTestDatabase();
  admin = connect('postgres.js', url, { max: 3 });
});
afterAll(() => admin.close());

function codes(error: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = error; e; e = (e as { cause?: unknown }).cause) out.push((e as { code?: unknown }).code);
  return out;
}

describe.each(DRIVERS)('deadlines (%s)', (driver) => {
  it('a renewal blocked on a row lock gives up by the trust deadline (lock_timeout), and leadership recovers', async () => {
    const conn = connect(driver, url, { max: 2 });
    const errors: ElectorError[] = [];
    const name = `locked-${driver}`;
    const elector = createElector(conn.db, {
      name,
      ttl: 1_500,
      renewInterval: 200,
      safetyMargin: 300,
      hooks: { error: (e) => void errors.push(e as ElectorError) },
    });
    const holder = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await elector.start();
      const term = elector.lease!.term;
      // An operator's transaction holds the lease row.
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      const holding = holder.begin(async (tx) => {
        await tx`select * from river_leader where name = ${name} for update`;
        await released;
      });
      const events: string[] = [];
      elector.subscribe((e) => void events.push(`${e.type}:${e.term}${e.type === 'lost' ? `:${e.reason}` : ''}`));
      try {
        await vi.waitFor(() => expect(events).toContain(`lost:${term}:trust-expired`), { timeout: 5_000 });
        // The renewal did not hang: the server cancelled it (lock or statement timeout) in time.
        const renewalErrors = errors.filter((e) => e.operation === 'renewal');
        expect(renewalErrors.length).toBeGreaterThan(0);
        expect(renewalErrors.flatMap((e) => codes(e))).toEqual(expect.arrayContaining([expect.stringMatching(/^(55P03|57014)$/)]));
      } finally {
        release();
        await holding;
      }
      await elector.waitForLeadership({ signal: AbortSignal.timeout(10_000) });
      expect(elector.lease!.term).toBeGreaterThan(term);
    } finally {
      await elector.stop();
      await holder.end();
      await conn.close();
    }
  });
});

it('stop() resolves within one ttl even while an election is blocked on a locked row, and with a stuck listener', async () => {
  const conn = connect('postgres.js', url, { max: 2 });
  const name = 'stop-while-locked';
  const holder = postgres(url, { max: 1, onnotice: () => {} });
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  await admin.query(
    `insert into river_leader (name, leader_id, elected_at, expires_at) values ($1, 'someone', now(), now() - interval '1 second')`,
    [name],
  );
  const holding = holder.begin(async (tx) => {
    await tx`select * from river_leader where name = ${name} for update`;
    await released;
  });
  const elector = createElector(conn.db, { name, ttl: 1_000, renewInterval: 200, safetyMargin: 200, listen: false });
  elector.subscribe(() => new Promise(() => {})); // a listener that never returns
  try {
    void elector.start(); // its first election waits on the locked (expired) row
    await new Promise((r) => setTimeout(r, 200));
    const started = performance.now();
    await elector.stop();
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(elector.state).toBe('stopped');
  } finally {
    release();
    await holding;
    await holder.end();
    await conn.close();
  }
});

describe('pool starvation', () => {
  const sleepers = (db: Connection, seconds: number) =>
    Promise.all([db.query(`select pg_sleep(${seconds})`), db.query(`select pg_sleep(${seconds})`)]).catch(() => {});

  it('with its own small pool, leadership holds while the application pool is saturated', async () => {
    const app = connect('postgres.js', url, { max: 2 });
    const own = connect('postgres.js', url, { max: 2 });
    const elector = createElector(own.db, { name: 'own-pool', ttl: 1_000, renewInterval: 200, safetyMargin: 200 });
    try {
      await elector.start();
      const term = elector.lease!.term;
      const busy = sleepers(app, 2);
      await new Promise((r) => setTimeout(r, 1_800));
      expect(elector.isLeader).toBe(true);
      expect(elector.lease!.term).toBe(term);
      await busy;
    } finally {
      await elector.stop();
      await Promise.all([app.close(), own.close()]);
    }
  });

  it('sharing its db with an application that saturates the pool, the leader keeps leading: it runs on connections of its own', async () => {
    // Before: renewals queued behind the application's queries for a pool connection and the
    // leader lost its trust window. Now election statements never use the application's pool.
    const shared = connect('postgres.js', url, { max: 2 });
    const elector = createElector(shared.db, { name: 'shared-pool', ttl: 1_000, renewInterval: 200, safetyMargin: 200, listen: false });
    const events: string[] = [];
    elector.subscribe((e) => void events.push(e.type));
    try {
      await elector.start();
      const term = elector.lease!.term;
      const busy = sleepers(shared, 2);
      await new Promise((r) => setTimeout(r, 1_800));
      expect(elector.isLeader).toBe(true);
      expect(elector.lease!.term).toBe(term);
      expect(events).toEqual(['gained']);
      await busy;
    } finally {
      await elector.stop();
      await shared.close();
    }
  });
});

describe('least privilege', () => {
  it('an elector role with only SELECT, INSERT, UPDATE, DELETE on the table elects, renews, resigns, LISTENs and takes requests', async () => {
    await admin.query(`create role leader_app login password 'leader-pw'`);
    await admin.query('grant select, insert, update, delete on river_leader to leader_app');
    const limited = new URL(url);
    limited.username = 'leader_app';
    limited.password = 'leader-pw';
    const client = postgres(limited.toString(), { max: 2, onnotice: () => {} });
    const db = drizzle(client) as unknown as LeaderDatabase;
    const options = { name: 'least-privilege', ttl: 3_000, renewInterval: 200, safetyMargin: 300 };
    const a = createElector(db, { ...options, id: 'a' });
    const b = createElector(db, { ...options, id: 'b' });
    try {
      await a.start();
      await b.start();
      expect(a.isLeader).toBe(true);
      await new Promise((r) => setTimeout(r, 600));
      expect(a.stats.renewals.ok).toBeGreaterThan(0);
      expect(a.stats.renewals.failed).toBe(0);
      await requestResign(db, { name: 'least-privilege' });
      await b.waitForLeadership({ signal: AbortSignal.timeout(3_000) });
      // Overwriting an expired lease draws a new term with SET term = DEFAULT: no sequence grant needed.
      await Promise.all([a.stop(), b.stop()]);
      await admin.query(`update river_leader set expires_at = now() - interval '1 second' where name = 'least-privilege'`);
      const c = createElector(db, { ...options, id: 'c' });
      await c.start();
      expect(c.isLeader).toBe(true);
      await c.stop();
      // DDL is the only thing it may not do.
      await expect(migrate(db)).rejects.toThrow();
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await client.end();
    }
  });
});

describe('hostile identifiers', () => {
  it('channel, schema and table names are quoted: hostile values are used verbatim and harmlessly', async () => {
    const schema = `ops"; drop table river_leader; --`;
    const tableName = `lea"ses ✓`;
    await admin.query(`create schema "${schema.replace(/"/g, '""')}"`);
    await admin.query(
      `create table "${schema.replace(/"/g, '""')}"."${tableName.replace(/"/g, '""')}" (like public.river_leader including all)`,
    );
    const { table } = createLeaderTable({ schema, table: tableName });
    const channel = `chan"; select pg_sleep(10); --`;
    const conn = connect('postgres.js', url);
    const options = { name: 'hostile', table, channel, ttl: 60_000, renewInterval: 20_000, safetyMargin: 1_000 };
    const a = createElector(conn.db, { ...options, id: 'a' });
    const b = createElector(conn.db, { ...options, id: 'b' });
    try {
      await a.start();
      await b.start();
      const started = performance.now();
      await a.stop();
      await b.waitForLeadership();
      expect(performance.now() - started).toBeLessThan(1_000); // NOTIFY on the hostile channel name worked
      expect(await admin.query(`select to_regclass('public.river_leader') is not null as here`)).toEqual([{ here: true }]); // untouched
    } finally {
      await b.stop();
      await conn.close();
    }
  });

  it.each([
    ['schema', { schema: '' }],
    ['table', { table: 'x'.repeat(64) }],
    ['table', { table: 'a\0b' }],
  ])('refuses an identifier Postgres cannot store (%s)', (option, value) => {
    expect(() => createLeaderTable(value)).toThrow(InvalidOptionError);
    expect(() => createLeaderTable(value)).toThrow(new RegExp(`"${option}"`));
  });
});
