/**
 * An answer is believed only if it can answer the statement sent (lease/answers.ts). A
 * connection out of step with the server (postgres.js `prepare: true` behind a transaction-mode
 * PgBouncer) was seen to hand one statement's rows to another: a group then believed it led five
 * names with term null while another member held them. Pure: the answers here are made by hand,
 * as such a connection delivers them; the real statements' answers pass it in every other test.
 */
import { describe, expect, it } from 'vitest';
import { afterFailure, believed } from '../src/dev/testing.js';
import { createElector, createElectorGroup, DeadlineExceededError, type LeaderInfo, UnexpectedAnswerError } from '../src/index.js';
import { connect, createTestDatabase, DRIVERS } from './support/db.js';

const lease = (over: Partial<Record<keyof LeaderInfo, unknown>> = {}): LeaderInfo =>
  ({
    name: 'jobs',
    leaderId: 'me',
    term: 7,
    electedAt: new Date(),
    expiresAt: new Date(Date.now() + 10_000),
    remainingMs: 10_000,
    resignRequestedAt: null,
    ...over,
  }) as LeaderInfo;

describe('answers the library believes', () => {
  it('a real answer passes: the name asked about, the caller as leader, a term at or above the one renewed', () => {
    expect(believed(lease(), { statement: 'renewal', names: 'jobs', leaderId: 'me', atLeastTerm: 7 }).term).toBe(7);
    expect(believed(lease({ term: 9 }), { statement: 'renewal', names: 'jobs', leaderId: 'me', atLeastTerm: 7 }).term).toBe(9);
    expect(believed(lease({ leaderId: 'other' }), { statement: 'election', names: new Set(['a', 'jobs']) }).leaderId).toBe('other');
  });

  it.each([
    ['a term that is no identity value (null)', lease({ term: null as unknown as number }), { leaderId: 'me' }],
    ['a term that is no identity value (NaN)', lease({ term: Number.NaN }), { leaderId: 'me' }],
    ['a term of 0', lease({ term: 0 }), {}],
    ['a name not asked about', lease({ name: 'other-name' }), {}],
    ["another leader's lease as the caller's win", lease({ leaderId: 'someone-else' }), { leaderId: 'me' }],
    ['a term below the one renewed', lease({ term: 6 }), { leaderId: 'me', atLeastTerm: 7 }],
    ['no time left', lease({ remainingMs: Number.NaN }), {}],
  ])('refuses %s, with a typed error that says what and how to fix it', (_what, answer, expected) => {
    const check = () => believed(answer, { statement: 'batched election', names: new Set(['jobs']), ...expected });
    expect(check).toThrow(UnexpectedAnswerError);
    expect(check).toThrow(/batched election does not match it .*prepare: false/);
  });

  it('an answer refused replaces the connections at once; no answer in time only at the second in a row; other errors never', () => {
    expect(afterFailure(new UnexpectedAnswerError('election', 'x'), 0)).toEqual({ unanswered: 0, reset: true });
    expect(afterFailure(new DeadlineExceededError('slow'), 0)).toEqual({ unanswered: 1, reset: false });
    expect(afterFailure(new DeadlineExceededError('slow'), 1)).toEqual({ unanswered: 0, reset: true });
    expect(afterFailure(new Error('connection refused'), 1)).toEqual({ unanswered: 1, reset: false });
  });
});

describe.each(DRIVERS)("real answers under a session's own settings (%s)", (driver) => {
  it("a DateStyle other than ISO ('SQL, DMY': Drizzle's Date of the expiry is invalid) is still a real answer: an elector and a group lead", async () => {
    // Before: every win was refused ("without a valid expiry") while the database elected it,
    // term after term, and no name ever had a leader.
    const url = await createTestDatabase();
    const conn = connect(driver, url);
    const [{ db: name }] = (await conn.query('select current_database() as db')) as [{ db: string }];
    await conn.query(`alter database ${name} set datestyle = 'SQL, DMY'`);
    const db = connect(driver, url);
    const timing = { ttl: 3_000, renewInterval: 300, safetyMargin: 500, listen: false as const };
    const elector = createElector(db.db, { ...timing, name: 'datestyle' });
    const group = createElectorGroup(db.db, { ...timing, names: ['ds-a', 'ds-b'], group: 'datestyle' });
    try {
      await elector.start();
      await group.start();
      expect(elector.isLeader).toBe(true);
      expect([...group.leaderships().keys()].sort()).toEqual(['ds-a', 'ds-b']);
      await new Promise((r) => setTimeout(r, 700)); // renewals too
      expect(elector.stats.renewals.failed).toBe(0);
      expect(elector.isLeader).toBe(true);
      expect(group.stats.statements.failed).toBe(0);
    } finally {
      await Promise.all([elector.stop(), group.stop()]);
      await db.close();
      await conn.close();
    }
  });
});
