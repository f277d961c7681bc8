/**
 * The lease statements themselves, through the real LeaseStore, against a real server and both
 * drivers: the River-equivalent cases plus the seed regression (a non-leader's renewal must
 * change nothing).
 */
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { leaseStore, NO_DEADLINE, renewSql } from '../src/dev/testing.js';
import { type LeaderDatabase, listLeases } from '../src/index.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from './support/db.js';

const channel = 'river_leadership';
const ttlMs = 10_000;

describe.each(DRIVERS)('lease store (%s)', (driver) => {
  let conn: Connection;
  let url: string;
  beforeAll(async () => {
    url = await createTestDatabase();
    conn = connect(driver, url);
  });
  afterAll(() => conn.close());
  beforeEach(async () => {
    await conn.query('delete from river_leader');
  });

  const row = async (name: string) =>
    (
      await conn.query<{ leader_id: string; term: string; expires_ms: string; elected_at: string }>(
        'select leader_id, term::text, (extract(epoch from expires_at) * 1000)::text as expires_ms, elected_at::text from river_leader where name = $1',
        [name],
      )
    )[0];
  const store = () => leaseStore(conn.db, { channel });
  const elect = (name: string, leaderId: string, ttl = ttlMs) => store().elect({ name, leaderId, ttlMs: ttl });
  const renew = async (input: { name: string; leaderId: string; term: number; ttlMs: number }) => await store().renew(input, NO_DEADLINE);
  const resign = (input: { name: string; leaderId: string; term: number }) => store().resign(input);
  const readLease = async (name: string) => (await listLeases(conn.db)).find((l) => l.name === name) ?? null;
  const expire = (name: string) => conn.query(`update river_leader set expires_at = now() - interval '1 second' where name = $1`, [name]);

  it('elects on an empty table', async () => {
    const result = await elect('a', 'one');
    expect(result.won).toBe(true);
    const stored = await row('a');
    expect(stored?.leader_id).toBe('one');
    if (result.won) expect(Number(stored?.term)).toBe(result.lease.term);
  });

  it('cannot elect twice in a row: the second attempt changes nothing and reports the holder', async () => {
    const first = await elect('a', 'one');
    const before = await row('a');
    const second = await elect('a', 'one');
    expect(second.won).toBe(false);
    expect(await row('a')).toEqual(before);
    if (!second.won && first.won) {
      expect(second.holder?.term).toBe(first.lease.term);
      expect(second.holder?.remainingMs).toBeGreaterThan(ttlMs - 2_000);
      expect(second.holder?.remainingMs).toBeLessThanOrEqual(ttlMs);
    }
  });

  it('a competing candidate is denied while the lease lives, and wins with a larger term once it expired', async () => {
    const first = await elect('a', 'one');
    expect((await elect('a', 'two')).won).toBe(false);
    await expire('a');
    const second = await elect('a', 'two');
    expect(second.won).toBe(true);
    if (first.won && second.won) expect(second.lease.term).toBeGreaterThan(first.lease.term);
    expect((await row('a'))?.leader_id).toBe('two');
  });

  describe('seed regression: the conditional renew compares the STORED row', () => {
    it("a non-leader's renewal changes nothing and does not make it leader", async () => {
      const won = await elect('a', 'leader');
      if (!won.won) throw new Error('setup: election failed');
      const before = await row('a');
      // The impostor even knows the right term: only the stored leader_id may renew.
      const renewed = await renew({ name: 'a', leaderId: 'impostor', term: won.lease.term, ttlMs: 60_000 });
      expect(renewed).toBeNull();
      expect(await row('a')).toEqual(before);
    });

    it('puts the stored-row comparison in DO UPDATE ... WHERE and never compares excluded', () => {
      const query = renewSql(conn.db);
      const where = query.slice(query.indexOf('do update'));
      expect(where).toMatch(
        /do update set "expires_at" = .* where \("river_leader"\."leader_id" = \$\d+ and "river_leader"\."term" = \$\d+ and "river_leader"\."expires_at" > now\(\)\)/,
      );
      expect(query).not.toMatch(/excluded/i);
    });
  });

  it('the leader renews its own term and pushes expires_at forward (by the database clock)', async () => {
    const won = await elect('a', 'one', 2_000);
    if (!won.won) throw new Error('setup');
    const before = await row('a');
    const renewed = await renew({ name: 'a', leaderId: 'one', term: won.lease.term, ttlMs: 60_000 });
    expect(renewed?.term).toBe(won.lease.term);
    const after = await row('a');
    expect(Number(after!.expires_ms)).toBeGreaterThan(Number(before!.expires_ms) + 50_000);
    expect(after!.elected_at).toEqual(before!.elected_at);
  });

  it('an expired but not yet deleted lease cannot be renewed', async () => {
    const won = await elect('a', 'one');
    if (!won.won) throw new Error('setup');
    await expire('a');
    const before = await row('a');
    expect(await renew({ name: 'a', leaderId: 'one', term: won.lease.term, ttlMs })).toBeNull();
    expect(await row('a')).toEqual(before);
  });

  it('a mismatched term cannot be renewed, even by the same leader id', async () => {
    const won = await elect('a', 'one');
    if (!won.won) throw new Error('setup');
    const before = await row('a');
    expect(await renew({ name: 'a', leaderId: 'one', term: won.lease.term - 1, ttlMs })).toBeNull();
    expect(await row('a')).toEqual(before);
  });

  it('a renewal that finds the row gone inserts a new, larger term', async () => {
    const won = await elect('a', 'one');
    if (!won.won) throw new Error('setup');
    await conn.query('delete from river_leader');
    const renewed = await renew({ name: 'a', leaderId: 'one', term: won.lease.term, ttlMs });
    expect(renewed?.term).toBeGreaterThan(won.lease.term);
  });

  it('resign without leadership does nothing', async () => {
    const won = await elect('a', 'one');
    if (!won.won) throw new Error('setup');
    expect(await resign({ name: 'a', leaderId: 'two', term: won.lease.term })).toBe(false);
    expect(await resign({ name: 'b', leaderId: 'one', term: won.lease.term })).toBe(false);
    expect((await row('a'))?.leader_id).toBe('one');
  });

  it('resigning an older term does not remove a newer term of the same leader id', async () => {
    const old = await elect('a', 'one');
    await expire('a');
    const fresh = await elect('a', 'one');
    if (!old.won || !fresh.won) throw new Error('setup');
    expect(await resign({ name: 'a', leaderId: 'one', term: old.lease.term })).toBe(false);
    expect(Number((await row('a'))?.term)).toBe(fresh.lease.term);
  });

  it('resign deletes the exact term and NOTIFYs in the same statement (both commit or neither)', async () => {
    const won = await elect('a', 'one');
    if (!won.won) throw new Error('setup');
    const heard: string[] = [];
    const listener = postgres(url, { max: 1, onnotice: () => {} });
    await listener.listen(channel, (payload) => heard.push(payload));
    try {
      // Rolled back: neither the delete nor the NOTIFY may happen.
      await conn.db
        .transaction(async (tx) => {
          expect(
            await leaseStore(tx as unknown as LeaderDatabase, { channel }).resign({ name: 'a', leaderId: 'one', term: won.lease.term }),
          ).toBe(true);
          tx.rollback();
        })
        .catch(() => {});
      expect(await row('a')).toBeDefined();
      expect(await resign({ name: 'a', leaderId: 'one', term: won.lease.term })).toBe(true);
      expect(await row('a')).toBeUndefined();
      await vi.waitFor(() => expect(heard).toHaveLength(1));
      expect(JSON.parse(heard[0]!)).toEqual({ v: 1, action: 'resigned', name: 'a', leaderId: 'one', term: won.lease.term });
    } finally {
      await listener.end();
    }
  });

  it('terms strictly increase across resignations, expiry and deleted rows', async () => {
    const terms: number[] = [];
    for (let i = 0; i < 4; i++) {
      const won = await elect('a', `c${i}`);
      if (!won.won) throw new Error('setup');
      terms.push(won.lease.term);
      if (i === 0) await resign({ name: 'a', leaderId: 'c0', term: won.lease.term });
      if (i === 1) await expire('a');
      if (i === 2) await conn.query('delete from river_leader');
      if (i === 3) break;
    }
    for (let i = 1; i < terms.length; i++) expect(terms[i]).toBeGreaterThan(terms[i - 1]!);
  });

  it('names are isolated: many elections share the table', async () => {
    expect((await elect('a', 'one')).won).toBe(true);
    expect((await elect('b', 'two')).won).toBe(true);
    expect((await elect('a', 'two')).won).toBe(false);
    const all = await listLeases(conn.db);
    expect(all.map((l) => [l.name, l.leaderId])).toEqual([
      ['a', 'one'],
      ['b', 'two'],
    ]);
  });

  it('stores names and ids with quotes, semicolons and unicode verbatim', async () => {
    const name = `x'); drop table river_leader; --"名前🚀`;
    const id = `"; delete from river_leader where '1'='1 ✓ ñ`;
    expect((await elect(name, id)).won).toBe(true);
    const lease = await readLease(name);
    expect(lease?.name).toBe(name);
    expect(lease?.leaderId).toBe(id);
  });

  it('the table rejects names and ids outside 1..127 characters', async () => {
    await expect(elect('', 'one')).rejects.toThrow();
    await expect(elect('n'.repeat(128), 'one')).rejects.toThrow();
    await expect(elect('a', '')).rejects.toThrow();
  });

  it('a term cannot be chosen by the writer: the column is GENERATED ALWAYS', async () => {
    await expect(
      conn.db.execute(
        sql`insert into river_leader (name, leader_id, elected_at, expires_at, term) values ('x', 'y', now(), now(), 999999)`,
      ),
    ).rejects.toThrow();
  });

  it('reads the remaining lease time from the server clock', async () => {
    await elect('a', 'one', 5_000);
    const lease = await readLease('a');
    expect(lease!.remainingMs).toBeGreaterThan(3_000);
    expect(lease!.remainingMs).toBeLessThanOrEqual(5_000);
    await expire('a');
    expect((await readLease('a'))!.remainingMs).toBeLessThan(0);
  });
});
