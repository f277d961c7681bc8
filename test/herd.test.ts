/**
 * The herd on a graceful handoff, against a real server: one follower volunteers as next in
 * line (a `next_in_line` NOTIFY), elects at once on `resigned`, and the others skip their
 * attempt when its `elected` arrives within their stagger. The volunteer is only a hint: a
 * forged, stale or stopped one must cost the others the stagger, never the lease.
 */
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { directChannel, nextInLinePayload, parseElectorHint } from '../src/dev/testing.js';
import { createElector, type Elector, parseNotification } from '../src/index.js';
import { FaultProxy } from './faults/proxy.js';
import { connect, createTestDatabase, DRIVERS } from './support/db.js';
import { ElectorPool, sleep } from './support/elector.js';
import { unprivilegedClient } from './support/unprivileged.js';

const CHANNEL = 'river_leadership';
/** Long enough that only a notification can have ended a follower's sleep within the test. */
const LONG_LEASE = { ttl: 30_000, renewInterval: 10_000, safetyMargin: 1_000 };
/**
 * Past the longest stagger (2 × 25 ms), so every follower that was going to race the volunteer
 * has tried, and before the followers' look at the database (250 ms at the earliest): that one
 * comes after the successor committed and is not part of the herd.
 */
const AFTER_STAGGER_MS = 150;

let url: string;
beforeAll(async () => {
  url = await createTestDatabase();
});

const electionsOf = (electors: Elector[]) =>
  electors.reduce((sum, e) => sum + e.stats.elections.won + e.stats.elections.denied + e.stats.elections.failed, 0);

describe('next-in-line payload', () => {
  it('is read by electors only: parseNotification (watchers, the CLI, older electors) ignores it', () => {
    const payload = nextInLinePayload('jobs', 'worker-1', 7);
    expect(parseElectorHint(payload)).toEqual({ v: 1, action: 'next_in_line', name: 'jobs', id: 'worker-1', term: 7, direct: true });
    // An older elector's claim says nothing of a direct channel: its leader must tell everyone.
    expect(parseElectorHint(JSON.stringify({ v: 1, action: 'next_in_line', name: 'jobs', id: 'w', term: 7 }))).toEqual({
      v: 1,
      action: 'next_in_line',
      name: 'jobs',
      id: 'w',
      term: 7,
    });
    expect(parseNotification(payload)).toBeNull();
    // A term is required and must be a term: a claim about no term in particular names no one.
    expect(parseElectorHint(JSON.stringify({ v: 1, action: 'next_in_line', name: 'jobs', id: 'w' }))).toBeNull();
    expect(parseElectorHint(JSON.stringify({ v: 1, action: 'next_in_line', name: 'jobs', id: 'w', term: -1 }))).toBeNull();
    expect(parseElectorHint(JSON.stringify({ v: 1, action: 'next_in_line', name: 'jobs', id: 3, term: 1 }))).toBeNull();
    // Fields a later version may add are ignored, not refused.
    expect(parseNotification(JSON.stringify({ v: 1, action: 'resigned', name: 'jobs', leaderId: 'a', term: 3, next: 'b' }))).toEqual({
      v: 1,
      action: 'resigned',
      name: 'jobs',
      leaderId: 'a',
      term: 3,
    });
  });
});

describe.each(DRIVERS)('graceful handoff without the herd (%s)', (driver) => {
  let conn: ReturnType<typeof connect>;
  let listener: postgres.Sql;
  let pool: ElectorPool;
  let name: string;
  let counter = 0;
  /** `next_in_line` claims heard on the channel by this test, in order. */
  let volunteers: { name: string; id: string; term: number }[] = [];
  /** A test's own reaction to what the channel carries (a forger's). */
  let onPayload: ((payload: string) => void) | null = null;

  beforeAll(async () => {
    conn = connect(driver, url, { max: 4 });
    listener = postgres(url, { max: 1, onnotice: () => {} });
    await listener.listen(CHANNEL, (payload) => {
      const hint = parseElectorHint(payload);
      if (hint?.action === 'next_in_line') volunteers.push({ name: hint.name, id: hint.id, term: hint.term });
      onPayload?.(payload);
    });
  });
  afterAll(async () => {
    await listener.end({ timeout: 5 });
    await conn.close();
  });
  beforeEach(() => {
    pool = new ElectorPool(conn);
    name = `herd-${driver}-${++counter}`;
    volunteers = [];
    onPayload = null;
  });
  afterEach(async () => {
    await pool.stopAll();
  });

  /** The latest volunteer for `term` of this test's name, once one has been heard. */
  const volunteerFor = async (term: number) => {
    await vi.waitFor(
      () => {
        if (!volunteers.some((v) => v.name === name && v.term === term)) throw new Error(`no volunteer for term ${term} yet`);
      },
      { timeout: 10_000, interval: 10 },
    );
    // Two volunteers can cross in flight; the latest heard is the one everyone agrees on.
    await sleep(100);
    return volunteers.filter((v) => v.name === name && v.term === term).at(-1)!;
  };

  const fleet = async (followers: number) => {
    const leader = pool.create({ ...LONG_LEASE, name, id: 'leader' });
    await leader.start();
    const rest = Array.from({ length: followers }, (_, i) => pool.create({ ...LONG_LEASE, name, id: `f${i}` }));
    await Promise.all(rest.map((e) => e.start()));
    expect(leader.isLeader).toBe(true);
    return { leader, followers: rest };
  };

  const nextLeader = async (among: Elector[], afterTerm: number) => {
    let winner: Elector | undefined;
    // A bound far below the 30 s lease: past it, the handoff would have waited for polling.
    await vi.waitFor(
      () => {
        winner = among.find((e) => e.isLeader && e.lease!.term > afterTerm);
        if (!winner) throw new Error('no new leader yet');
      },
      { timeout: 5_000, interval: 5 },
    );
    return winner!;
  };

  it('with 10 followers, each handoff runs about one election instead of ten, and the volunteer wins it', async () => {
    const { leader, followers } = await fleet(10);
    const all = [leader, ...followers];
    let current = leader;
    let elections = 0;
    const winners: { winner: string; volunteer: string }[] = [];
    const handoffs = 3;
    for (let i = 0; i < handoffs; i++) {
      const term = current.lease!.term;
      const volunteer = await volunteerFor(term);
      const others = all.filter((e) => e !== current);
      const before = electionsOf(others);
      // resign() keeps the old leader as a candidate; its hold-off (1 s) outlasts this count.
      await current.resign();
      const winner = await nextLeader(others, term);
      await sleep(AFTER_STAGGER_MS);
      elections += electionsOf(others) - before;
      winners.push({ winner: winner.id, volunteer: volunteer.id });
      expect(all.filter((e) => e.isLeader)).toEqual([winner]);
      current = winner;
      await sleep(1_100); // the old leader's hold-off ends; it rejoins as a follower
    }
    // Before next-in-line every follower elected on every `resigned`: 10 per handoff, 30 here.
    // One slow volunteer on a loaded machine lets the others try after their stagger: allow one.
    expect(elections).toBeLessThanOrEqual(handoffs + 10);
    expect(winners.filter((w) => w.winner === w.volunteer).length).toBeGreaterThanOrEqual(handoffs - 1);
  });

  it('2 candidates: the lone follower is its own next in line and takes over with one election', async () => {
    const { leader, followers } = await fleet(1);
    const [follower] = followers as [Elector];
    const term = leader.lease!.term;
    expect((await volunteerFor(term)).id).toBe(follower.id);
    const before = electionsOf(followers);
    await leader.stop();
    await nextLeader(followers, term);
    expect(electionsOf(followers) - before).toBe(1);
  });

  it('with a volunteer, the resignation reaches it alone: no other follower hears a thing until the successor has won', async () => {
    const { leader, followers } = await fleet(6);
    const term = leader.lease!.term;
    const { id } = await volunteerFor(term);
    const successor = followers.find((f) => f.id === id)!;
    const others = followers.filter((f) => f !== successor);
    const heardBefore = others.map((f) => f.stats.notifications.received);
    let heardAtGain: number[] | null = null;
    successor.subscribe((event) => {
      if (event.type === 'gained') heardAtGain ??= others.map((f) => f.stats.notifications.received);
    });
    const announced: string[] = [];
    onPayload = (payload) => {
      const n = parseNotification(payload);
      if (n?.name === name && (n.action === 'resigned' || n.action === 'elected')) announced.push(`${n.action} ${n.term}`);
    };
    await leader.stop();
    const newTerm = (await nextLeader([successor], term)).lease!.term;
    // Before: every follower's LISTEN delivered the `resigned` while the successor was electing.
    expect(heardAtGain).toEqual(heardBefore);
    await vi.waitFor(() => expect(announced).toEqual([`resigned ${term}`, `elected ${newTerm}`]), { timeout: 5_000, interval: 10 });
    await sleep(AFTER_STAGGER_MS);
    expect(followers.filter((e) => e.isLeader)).toEqual([successor]);
    // The others heard the handoff afterwards, from the successor, and did not elect on it.
    for (const [i, f] of others.entries()) expect(f.stats.notifications.received).toBeGreaterThan(heardBefore[i]!);
  });

  it("forged hints on the volunteer's own channel, from a role that may only connect, change no leadership", async () => {
    const { leader, followers } = await fleet(2);
    const term = leader.lease!.term;
    const { id } = await volunteerFor(term);
    const volunteer = followers.find((f) => f.id === id)!;
    const mallory = await unprivilegedClient(url, (sql) => conn.query(sql));
    try {
      const direct = directChannel(CHANNEL, id);
      const forged = [
        JSON.stringify({ v: 1, action: 'resigned', name, leaderId: leader.id, term }),
        JSON.stringify({ v: 1, action: 'resigned', name, leaderId: leader.id, term: term + 7 }),
        JSON.stringify({ v: 1, action: 'elected', name, leaderId: 'mallory', term: term + 1 }),
        JSON.stringify({ v: 1, action: 'request_resign', name }),
        '{"v":1,"action":"resigned"',
        'x'.repeat(7_999),
      ];
      for (let i = 0; i < 5; i++) for (const payload of forged) await mallory`select pg_notify(${direct}, ${payload})`;
      await sleep(300);
      // Woken, the volunteer asked the database, which still holds the leader's term.
      expect(volunteer.isLeader).toBe(false);
      expect(leader.isLeader).toBe(true);
      expect(leader.lease!.term).toBe(term);
      const [row] = (await conn.query('select leader_id, term from river_leader where name = $1', [name])) as {
        leader_id: string;
        term: string;
      }[];
      expect({ leaderId: row!.leader_id, term: Number(row!.term) }).toEqual({ leaderId: leader.id, term });
      // And a real handoff still completes in milliseconds, not at the lease's end (its wakes may
      // be spaced wider now, so the other follower can be the one that wins it).
      await leader.stop();
      const winner = await nextLeader(followers, term);
      expect(followers.filter((e) => e.isLeader)).toEqual([winner]);
    } finally {
      await mallory.end({ timeout: 5 });
    }
  });

  it('a volunteer claim without `direct` (an older elector) gets the resignation on the shared channel, as it expects', async () => {
    const { leader, followers } = await fleet(2);
    const term = leader.lease!.term;
    await volunteerFor(term);
    const older = followers[0]!;
    await conn.query('select pg_notify($1, $2)', [CHANNEL, JSON.stringify({ v: 1, action: 'next_in_line', name, id: older.id, term })]);
    await vi.waitFor(() => expect(volunteers.at(-1)).toMatchObject({ id: older.id, term }), { timeout: 5_000, interval: 10 });
    const direct: string[] = [];
    const shared: string[] = [];
    const spy = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await spy.listen(directChannel(CHANNEL, older.id), (payload) => void direct.push(payload));
      onPayload = (payload) => {
        const n = parseNotification(payload);
        if (n?.name === name && n.action === 'resigned') shared.push(n.leaderId!);
      };
      await leader.stop();
      await nextLeader(followers, term);
      await vi.waitFor(() => expect(shared).toEqual([leader.id]), { timeout: 5_000, interval: 10 });
      expect(direct).toEqual([]);
    } finally {
      await spy.end({ timeout: 5 });
    }
  });

  it('a forged `elected` while the leader waits for its successor costs a look at the database, not the lease', async () => {
    const { leader, followers } = await fleet(4);
    const term = leader.lease!.term;
    await volunteerFor(term);
    // A ghost volunteer (the latest claim wins), and a forger that hears what is sent to it.
    await conn.query('select pg_notify($1, $2)', [CHANNEL, nextInLinePayload(name, 'ghost', term)]);
    await vi.waitFor(() => expect(volunteers.at(-1)).toMatchObject({ id: 'ghost', term }), { timeout: 5_000, interval: 10 });
    const forger = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await forger.listen(directChannel(CHANNEL, 'ghost'), (payload) => {
        if (parseNotification(payload)?.action === 'resigned')
          void forger`select pg_notify(${CHANNEL}, ${JSON.stringify({ v: 1, action: 'elected', name, leaderId: 'ghost', term: term + 1 })})`;
      });
      await leader.stop();
      const winner = await nextLeader(followers, term);
      expect(followers.filter((e) => e.isLeader)).toEqual([winner]);
    } finally {
      await forger.end({ timeout: 5 });
    }
  });

  it('a follower whose own channel was not listened to yet at its first election volunteers once it is, not at its next attempt', async () => {
    const target = new URL(url);
    const proxy = new FaultProxy(target.hostname, Number(target.port));
    const through = new URL(url);
    through.port = String(await proxy.start());
    try {
      const leader = pool.create({ ...LONG_LEASE, name, id: 'leader' });
      await leader.start();
      const term = leader.lease!.term;
      // The follower's LISTEN connection goes silent from the LISTEN of its own channel on, so
      // its first election (denied) comes before it can hear a resignation told to it alone.
      proxy.set({ kind: 'blackhole-at', pattern: directChannel(CHANNEL, 'late') });
      const follower = pool.create({ ...LONG_LEASE, name, id: 'late', listen: { url: through.toString() } });
      await follower.start();
      expect(follower.isLeader).toBe(false);
      await sleep(200);
      expect(volunteers.filter((v) => v.name === name)).toEqual([]);
      proxy.set({ kind: 'pass' });
      // Its next attempt is an interval (10 s) away: the claim must come from LISTEN being up.
      await vi.waitFor(() => expect(volunteers.filter((v) => v.name === name)).toEqual([{ name, id: 'late', term }]), {
        timeout: 3_000,
        interval: 10,
      });
    } finally {
      await pool.stopAll();
      await proxy.close();
    }
  });

  it('a stopping leader with no volunteer lets LISTEN go before it resigns: its own NOTIFY reaches neither it nor its LISTEN backend', async () => {
    // Its own client, so its LISTEN connection is its alone (shared ones stay for the others).
    const own = connect(driver, url, { max: 1 });
    try {
      const leader = createElector(own.db, { ...LONG_LEASE, name, id: 'alone' });
      await leader.start();
      expect(leader.isLeader).toBe(true);
      const follower = pool.create({ ...LONG_LEASE, name, id: 'next' });
      await follower.start();
      const term = leader.lease!.term;
      await volunteerFor(term);
      // The latest claim names no one for this term: the resignation goes to everyone.
      await conn.query('select pg_notify($1, $2)', [CHANNEL, nextInLinePayload(name, 'ghost', term - 1)]);
      await vi.waitFor(() => expect(volunteers.at(-1)).toMatchObject({ id: 'ghost', term: term - 1 }), { timeout: 5_000, interval: 10 });
      await sleep(50);
      const heard = leader.stats.notifications.received;
      await leader.stop();
      expect(leader.stats.notifications.received).toBe(heard);
      // The connection itself closes a moment later (CLOSE_DELAY_MS, 250 ms), but its backend
      // must have stopped listening already: it was told before the resignation was sent.
      await vi.waitFor(
        async () => {
          const unlistened = (await conn.query(
            `select pid from pg_stat_activity where datname = current_database() and query ilike 'unlisten %'`,
          )) as { pid: number }[];
          if (unlistened.length === 0) throw new Error('the stopped leader’s LISTEN backend still listens');
        },
        { timeout: 200, interval: 10 },
      );
      await nextLeader([follower], term);
    } finally {
      await own.close();
    }
  });

  it.each([
    ['forged, naming a candidate that does not exist', (term: number) => ({ id: 'ghost', term })],
    ['stale, for an older term', (term: number) => ({ id: 'ghost', term: term - 1 })],
    ['forged, for a later term', (term: number) => ({ id: 'ghost', term: term + 1 })],
  ])('a volunteer hint that is %s costs only the stagger: the handoff completes, not after the lease', async (_, forge) => {
    const { leader, followers } = await fleet(4);
    const term = leader.lease!.term;
    await volunteerFor(term);
    const forged = forge(term);
    // Committed before the resignation, so every follower hears it first (commit order).
    await conn.query('select pg_notify($1, $2)', [CHANNEL, nextInLinePayload(name, forged.id, forged.term)]);
    const before = electionsOf(followers);
    await leader.stop();
    const winner = await nextLeader(followers, term);
    await sleep(AFTER_STAGGER_MS);
    expect(followers.filter((e) => e.isLeader)).toEqual([winner]);
    // No real volunteer for the term: every follower tried, after its stagger or at once.
    expect(electionsOf(followers) - before).toBe(followers.length);
  });

  it('a volunteer that stopped costs the others only the stagger', async () => {
    const { leader, followers } = await fleet(4);
    const term = leader.lease!.term;
    const { id } = await volunteerFor(term);
    const gone = followers.find((f) => f.id === id)!;
    expect(gone).toBeDefined();
    await gone.stop();
    const rest = followers.filter((f) => f !== gone);
    await leader.stop();
    const winner = await nextLeader(rest, term);
    expect(rest.filter((e) => e.isLeader)).toEqual([winner]);
  });

  it('a forged volunteer and a forged "elected" from it cost the others a look at the database, not the lease', async () => {
    const { leader, followers } = await fleet(4);
    const term = leader.lease!.term;
    await volunteerFor(term);
    // Anyone who can NOTIFY (no privilege on the table needed) names a ghost as next in line,
    // and claims the ghost won the moment the resignation is heard.
    const forge = (payload: object) => listener`select pg_notify(${CHANNEL}, ${JSON.stringify(payload)})`.then(() => {});
    await forge(JSON.parse(nextInLinePayload(name, 'ghost', term)));
    await vi.waitFor(() => expect(volunteers.at(-1)).toMatchObject({ id: 'ghost', term }), { timeout: 5_000, interval: 10 });
    onPayload = (payload) => {
      const n = parseNotification(payload);
      if (n?.action === 'resigned' && n.name === name && n.term === term)
        void forge({ v: 1, action: 'elected', name, leaderId: 'ghost', term: term + 1 });
    };
    await leader.stop();
    // Before: every follower called its attempt off and slept until the old lease's end (30 s).
    const winner = await nextLeader(followers, term);
    expect(followers.filter((e) => e.isLeader)).toEqual([winner]);
  });
  it('forged resigned/elected pairs repeated faster than the look do not push it back: the follower still looks at the database', async () => {
    const { leader, followers } = await fleet(1);
    const [follower] = followers as [Elector];
    const term = leader.lease!.term;
    await volunteerFor(term);
    // Found by an adversarial review: each forged `elected` after a `resigned` re-armed the
    // follower's look at the database (250-500 ms), so a pair every 100 ms kept it from ever
    // looking, and a real resignation landing in the pattern waited for the lease's end (about
    // 9 s of a 10 s lease there). Each pair names the ghost next in line again first, so that
    // the follower's own volunteering for the forged term does not break the pattern.
    const pair = () =>
      listener`select pg_notify(${CHANNEL}, ${nextInLinePayload(name, 'ghost', term)}),
                      pg_notify(${CHANNEL}, ${JSON.stringify({ v: 1, action: 'resigned', name, leaderId: leader.id, term })}),
                      pg_notify(${CHANNEL}, ${JSON.stringify({ v: 1, action: 'elected', name, leaderId: 'ghost', term: term + 1 })})`;
    const before = electionsOf([follower]);
    const flood = setInterval(() => void pair().catch(() => {}), 100);
    try {
      await sleep(1_600);
    } finally {
      clearInterval(flood);
    }
    // Before: 0 (every pair put the look off again). The lease is live: each look is denied.
    expect(electionsOf([follower]) - before).toBeGreaterThanOrEqual(1);
    expect(leader.isLeader).toBe(true);
  });

  it('a candidate in its hold-off after resigning does not volunteer: a handoff directed to it would wait for the hold-off', async () => {
    const { leader: a, followers } = await fleet(2);
    const t1 = a.lease!.term;
    await volunteerFor(t1);
    await a.resign(); // a holds off 1 s (min(renewInterval, 1 s))
    const b = await nextLeader(followers, t1);
    const t2 = b.lease!.term;
    await volunteerFor(t2);
    await b.resign();
    const c = await nextLeader(
      followers.filter((f) => f !== b),
      t2,
    );
    const t3 = c.lease!.term;
    // The handoff's announcement reaches a within its hold-off; before, it volunteered for t3.
    await sleep(150);
    expect(volunteers.filter((v) => v.name === name && v.term === t3 && v.id === a.id)).toEqual([]);
  });
});
