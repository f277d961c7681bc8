/**
 * The group's batched statements, driven by hand against a real server through both drivers:
 * per-name, per-term renewal (a stale term in the batch renews nothing), lock modes (a renewal
 * is not blocked by FOR KEY SHARE; a row locked by another writer is skipped, not waited on),
 * elections that never lock a live lease, and term-scoped batched resignation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { electMany, heartbeat, renewMany, renewManyWithHeartbeat, resignMany } from '../../src/dev/testing.js';
import { riverLeader } from '../../src/index.js';
import { type Connection, connect, createTestDatabase, DRIVERS } from '../support/db.js';

let url: string;
beforeAll(async () => {
  url = await createTestDatabase();
});

const channel = 'river_leadership';
const ttlMs = 5_000;

describe.each(DRIVERS)('batched lease statements (%s)', (driver) => {
  let conn: Connection;
  let admin: Connection;
  let prefix: string;
  let counter = 0;
  beforeAll(() => {
    conn = connect(driver, url, { max: 4 });
    admin = connect('postgres.js', url, { max: 4 });
  });
  afterAll(async () => {
    await conn.close();
    await admin.close();
  });
  const names = (n: number) => {
    prefix = `${driver}-s${++counter}`;
    return Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  };
  const elect = (list: string[], leaderId: string) => electMany(conn.db, riverLeader, { names: list, leaderId, ttlMs, channel });
  const termsOf = async (list: string[]) =>
    new Map(
      (await admin.query<{ name: string; term: string }>('select name, term from river_leader where name = any($1)', [list])).map((r) => [
        r.name,
        Number(r.term),
      ]),
    );

  it('elects every free name in one statement and reads back the holders of the others', async () => {
    const list = names(5);
    const first = await elect(list.slice(0, 3), 'a');
    expect(first.map((o) => [o.name, o.won])).toEqual(list.slice(0, 3).map((n) => [n, true]));
    const second = await elect(list, 'b');
    const byName = new Map(second.map((o) => [o.name, o]));
    for (const n of list.slice(0, 3)) {
      const outcome = byName.get(n)!;
      expect(outcome.won).toBe(false);
      if (!outcome.won) expect(outcome.holder).toMatchObject({ name: n, leaderId: 'a' });
    }
    for (const n of list.slice(3)) expect(byName.get(n)).toMatchObject({ won: true, lease: { leaderId: 'b', name: n } });
  });

  it('one statement renews the names and the member row, and reads every live member once', async () => {
    const list = names(4);
    const won = await elect(list, 'a');
    const leaderships = won.map((o) => ({ name: o.name, term: o.won ? o.lease.term : -1 }));
    const memberPrefix = `drizzle-leader:group:${prefix}:`;
    await admin.query(
      `insert into river_leader (name, leader_id, elected_at, expires_at) values ($1, 'b', now(), now() + interval '5 seconds'), ($2, 'c', now(), now() - interval '1 second')`,
      [`${memberPrefix}1:b`, `${memberPrefix}1:c`],
    );
    const member = { memberName: `${memberPrefix}1:a`, prefix: memberPrefix, channel };
    // First use inserts a's member row; the read sees the statement's snapshot (b only: c expired).
    const first = await renewManyWithHeartbeat(conn.db, riverLeader, { leaderships, leaderId: 'a', ttlMs, member });
    expect(first.outcomes.map((o) => [o.name, o.kind])).toEqual(list.map((n) => [n, 'renewed']));
    expect(first.members.map((m) => m.leaderId)).toEqual(['b']);
    // Then it renews it: every live member once (not once per renewed name), a's row included.
    const second = await renewManyWithHeartbeat(conn.db, riverLeader, { leaderships, leaderId: 'a', ttlMs, member });
    expect(second.members.map((m) => m.leaderId).sort()).toEqual(['a', 'b']);
    for (const m of second.members) expect(m.remainingMs).toBeGreaterThan(0);
    // A member row is its member's alone: another id's heartbeat neither renews nor takes it.
    const [before] = await admin.query<{ expires_at: string }>('select expires_at::text from river_leader where name = $1', [
      `${memberPrefix}1:b`,
    ]);
    await renewManyWithHeartbeat(conn.db, riverLeader, {
      leaderships: [{ name: list[0]!, term: leaderships[0]!.term }],
      leaderId: 'a',
      ttlMs,
      member: { ...member, memberName: `${memberPrefix}1:b` },
    });
    const [after] = await admin.query<{ expires_at: string; leader_id: string }>(
      'select expires_at::text, leader_id from river_leader where name = $1',
      [`${memberPrefix}1:b`],
    );
    expect(after).toEqual({ expires_at: before!.expires_at, leader_id: 'b' });
    // A stale term in the same statement renews nothing.
    const stale = await renewManyWithHeartbeat(conn.db, riverLeader, {
      leaderships: [{ name: list[1]!, term: leaderships[1]!.term - 1 }],
      leaderId: 'a',
      ttlMs,
      member,
    });
    expect(stale.outcomes).toEqual([{ name: list[1], kind: 'denied' }]);
  });

  it('the heartbeat, alone or riding on a renewal, returns the peeked names that have no live lease', async () => {
    const list = names(4);
    const [live, expired, missing, own] = list as [string, string, string, string];
    await admin.query(
      `insert into river_leader (name, leader_id, elected_at, expires_at) values ($1, 'b', now(), now() + interval '5 seconds'), ($2, 'b', now(), now() - interval '1 second')`,
      [live, expired],
    );
    const won = await elect([own], 'a');
    const memberPrefix = `drizzle-leader:group:${prefix}:`;
    const member = { memberName: `${memberPrefix}1:${'a'.repeat(16)}`, prefix: memberPrefix, channel, peek: [live, expired, missing] };
    const alone = await heartbeat(conn.db, riverLeader, { ...member, leaderId: 'a', ttlMs });
    expect(alone.free.sort()).toEqual([expired, missing].sort());
    // Its own row, inserted by this first heartbeat, is not in the statement's snapshot yet.
    expect(alone.members).toEqual([]);
    const riding = await renewManyWithHeartbeat(conn.db, riverLeader, {
      leaderships: [{ name: own, term: won[0]!.won ? won[0]!.lease.term : -1 }],
      leaderId: 'a',
      ttlMs,
      member,
    });
    expect(riding.outcomes.map((o) => [o.name, o.kind])).toEqual([[own, 'renewed']]);
    expect(riding.free.sort()).toEqual([expired, missing].sort());
    expect(riding.members.map((m) => m.leaderId)).toEqual(['a']);
    // A read only: the peeked rows are as they were.
    expect([...(await termsOf([live, expired, missing])).keys()].sort()).toEqual([live, expired].sort());
  });

  it('a member row locked by another session is skipped: the names beside it renew without waiting', async () => {
    const list = names(3);
    const won = await elect(list, 'a');
    const leaderships = won.map((o) => ({ name: o.name, term: o.won ? o.lease.term : -1 }));
    const memberPrefix = `drizzle-leader:group:${prefix}:`;
    const member = { memberName: `${memberPrefix}1:a`, prefix: memberPrefix, channel };
    await renewManyWithHeartbeat(conn.db, riverLeader, { leaderships, leaderId: 'a', ttlMs, member });
    const expiry = async () =>
      (await admin.query<{ e: string }>('select expires_at::text as e from river_leader where name = $1', [member.memberName]))[0]!.e;
    const before = await expiry();
    // Before: the membership upsert waited for the lock (here: forever, no lock_timeout), and
    // with it the renewal of every name in the statement.
    const result = await lockWhile(url, [`select 1 from river_leader where name = '${member.memberName}' for update`], () =>
      Promise.race([
        renewManyWithHeartbeat(conn.db, riverLeader, { leaderships, leaderId: 'a', ttlMs, member }),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the renewal waited on the member row lock')), 3_000)),
      ]),
    );
    expect(result.outcomes.map((o) => o.kind)).toEqual(['renewed', 'renewed', 'renewed']);
    expect(await expiry()).toBe(before);
    // The lock gone, the membership renews again.
    await renewManyWithHeartbeat(conn.db, riverLeader, { leaderships, leaderId: 'a', ttlMs, member });
    expect(await expiry()).not.toBe(before);
  });

  it('a stale term in the batch cannot renew the name’s newer term; the current terms renew', async () => {
    const list = names(3);
    const won = await elect(list, 'a');
    const terms = new Map(won.map((o) => [o.name, o.won ? o.lease.term : -1]));
    // The row of list[0] expires and another leader takes it with a newer term.
    await admin.query(`update river_leader set expires_at = now() - interval '1 second' where name = $1`, [list[0]]);
    const [taken] = await elect([list[0]!], 'b');
    expect(taken!.won).toBe(true);
    const newer = taken!.won ? taken!.lease.term : 0;
    expect(newer).toBeGreaterThan(terms.get(list[0]!)!);
    const before = (await admin.query<{ expires_at: string }>('select expires_at::text from river_leader where name = $1', [list[0]]))[0]!
      .expires_at;
    // "a" renews with its old term for list[0]: denied, and b's lease is untouched.
    const outcomes = await renewMany(conn.db, riverLeader, {
      leaderships: list.map((name) => ({ name, term: terms.get(name)! })),
      leaderId: 'a',
      ttlMs: 60_000,
    });
    expect(outcomes.map((o) => [o.name, o.kind])).toEqual([
      [list[0], 'denied'],
      [list[1], 'renewed'],
      [list[2], 'renewed'],
    ]);
    const after = await admin.query<{ leader_id: string; term: string; expires_at: string }>(
      'select leader_id, term::text, expires_at::text from river_leader where name = $1',
      [list[0]],
    );
    expect(after[0]).toMatchObject({ leader_id: 'b', term: String(newer) });
    expect(after[0]!.expires_at).toBe(before);
    // Even b's own id with a's old term cannot renew b's newer term.
    const crossed = await renewMany(conn.db, riverLeader, {
      leaderships: [{ name: list[0]!, term: terms.get(list[0]!)! }],
      leaderId: 'b',
      ttlMs: 60_000,
    });
    expect(crossed).toEqual([{ name: list[0], kind: 'denied' }]);
  });

  it('terms of one name strictly increase across batched elections, resignations and takeovers', async () => {
    const list = names(4);
    const seen = new Map<string, number[]>(list.map((n) => [n, []]));
    for (let round = 0; round < 5; round++) {
      const leader = `m${round % 2}`;
      const outcomes = await elect(list, leader);
      const held = outcomes.flatMap((o) => (o.won ? [{ name: o.name, term: o.lease.term }] : []));
      expect(held).toHaveLength(list.length);
      for (const { name, term } of held) seen.get(name)!.push(term);
      if (round % 2 === 0) {
        expect((await resignMany(conn.db, riverLeader, { leaderships: held, leaderId: leader, channel })).released).toHaveLength(4);
      } else {
        await admin.query(`update river_leader set expires_at = now() - interval '1 second' where name = any($1)`, [list]);
      }
    }
    for (const terms of seen.values()) {
      for (let i = 1; i < terms.length; i++) expect(terms[i]).toBeGreaterThan(terms[i - 1]!);
    }
  });

  it('a renewal is not blocked by the holder’s FOR KEY SHARE, and skips (not waits on) a row another writer locked', async () => {
    const list = names(3);
    const won = await elect(list, 'a');
    const leaderships = won.map((o) => ({ name: o.name, term: o.won ? o.lease.term : -1 }));
    const results = await lockWhile(
      url,
      [
        `select 1 from river_leader where name = '${list[0]}' for key share`,
        `select 1 from river_leader where name = '${list[1]}' for update`,
      ],
      () => renewMany(conn.db, riverLeader, { leaderships, leaderId: 'a', ttlMs }),
    );
    expect(results.map((o) => [o.name, o.kind])).toEqual([
      [list[0], 'renewed'],
      [list[1], 'skipped'],
      [list[2], 'renewed'],
    ]);
    // Once the lock is gone, the skipped name renews as before: nothing was lost.
    const again = await renewMany(conn.db, riverLeader, { leaderships, leaderId: 'a', ttlMs });
    expect(again.map((o) => o.kind)).toEqual(['renewed', 'renewed', 'renewed']);
    expect([...(await termsOf(list)).values()].sort()).toEqual(leaderships.map((l) => l.term).sort());
  });

  it('an election skips an expired row another session has locked, wins the rest, and never locks a live lease', async () => {
    const list = names(3);
    await elect(list, 'a');
    await admin.query(`update river_leader set expires_at = now() - interval '1 second' where name = any($1)`, [list.slice(0, 2)]);
    // list[0]: expired but locked by a stuck session; list[2]: live and locked FOR KEY SHARE by its leader's transaction.
    const outcomes = await lockWhile(
      url,
      [
        `select 1 from river_leader where name = '${list[0]}' for update`,
        `select 1 from river_leader where name = '${list[2]}' for key share`,
      ],
      () => elect(list, 'b'),
    );
    expect(outcomes.map((o) => [o.name, o.won])).toEqual([
      [list[0], false],
      [list[1], true],
      [list[2], false],
    ]);
  });

  it('resigns exactly the listed terms, NOTIFYs each, and skips a locked row', async () => {
    const list = names(3);
    const won = await elect(list, 'a');
    const leaderships = won.map((o) => ({ name: o.name, term: o.won ? o.lease.term : -1 }));
    const stale = { name: list[2]!, term: leaderships[2]!.term - 1 };
    const result = await lockWhile(url, [`select 1 from river_leader where name = '${list[1]}' for update`], () =>
      resignMany(conn.db, riverLeader, { leaderships: [leaderships[0]!, leaderships[1]!, stale], leaderId: 'a', channel }),
    );
    expect(result).toEqual({ released: [list[0]], skipped: [list[1]] });
    expect([...(await termsOf(list)).keys()].sort()).toEqual([list[1], list[2]].sort());
  });
});

/**
 * Runs `work` while another session holds row locks taken by `locks` in an open transaction;
 * the statement under test must return while the locks are still held (no waiting on them).
 */
async function lockWhile<T>(url: string, locks: string[], work: () => Promise<T>): Promise<T> {
  const { default: postgres } = await import('postgres');
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    let result: T | undefined;
    await sql.begin(async (tx) => {
      for (const statement of locks) await tx.unsafe(statement);
      result = await work();
    });
    return result as T;
  } finally {
    await sql.end({ timeout: 1 });
  }
}
