/**
 * Lease-checked transactions (`elector.transaction`, `leaseHeld`) against a real server through
 * both drivers: the lock blocks a takeover and not the holder's renewals, the check happens
 * before the work runs, and the bounds end a transaction that holds on too long.
 */
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { leaseStore } from '../src/dev/testing.js';
import { type Elector, InvalidOptionError, LeadershipLostError, LeaseTableOutdatedError, leaseHeld, SILENT_LOGGER } from '../src/index.js';
import { type Connection, connect, DRIVERS } from './support/db.js';
import { ElectorPool, sleep } from './support/elector.js';
import { createWorkLogDatabase, expireLease as expireLeaseOf, gate, loggedWork, pendingAfter } from './support/lease-checked.js';

let url: string;
beforeAll(async () => {
  url = await createWorkLogDatabase();
});

describe.each(DRIVERS)('lease-checked transactions (%s)', (driver) => {
  let conn: Connection;
  let admin: Connection;
  let pool: ElectorPool;
  let name: string;
  let counter = 0;

  beforeAll(() => {
    conn = connect(driver, url, { max: 10 });
    admin = connect('postgres.js', url, { max: 4 });
  });
  afterAll(async () => {
    await conn.close();
    await admin.close();
  });
  beforeEach(() => {
    pool = new ElectorPool(conn);
    name = `tx-${driver}-${++counter}`;
  });
  afterEach(async () => {
    await pool.stopAll();
  });

  const logged = () => loggedWork(admin, name);
  const expireLease = () => expireLeaseOf(admin, name);
  const leader = async (options = {}): Promise<Elector> => {
    const elector = pool.create({ name, logger: SILENT_LOGGER, ...options });
    await elector.start();
    expect(elector.isLeader).toBe(true);
    return elector;
  };

  it('commits the work of the leading term, with the lease it ran under', async () => {
    const elector = await leader();
    const result = await elector.transaction(async (tx, lease, signal) => {
      expect(signal.aborted).toBe(false);
      await tx.execute(sql`insert into work_log (name, term, note) values (${name}, ${lease.term}, 'done')`);
      return lease.term;
    });
    expect(result).toBe(elector.lease?.term);
    expect(await logged()).toEqual([{ term: result, note: 'done' }]);
  });

  it("a failure of the work rolls back and leaves the connection in the application's pool, ready for the next transaction", async () => {
    // A pool of one, so both transactions must run on the same connection: the first one's is
    // given back after its ROLLBACK (not discarded, nor kept), the second one gets it.
    const one = connect(driver, url, { max: 1 });
    const elector = new ElectorPool(one).create({ name, logger: SILENT_LOGGER });
    try {
      await elector.start();
      const backend = async (tx: { execute: (q: ReturnType<typeof sql>) => Promise<unknown> }) => {
        const result = (await tx.execute(sql`select pg_backend_pid() as pid`)) as { rows?: { pid: number }[] } & { pid: number }[];
        return Number((result.rows ?? result)[0]!.pid);
      };
      let first = 0;
      const failure = await elector
        .transaction(async (tx) => {
          first = await backend(tx);
          await tx.execute(sql`insert into work_log (name, term, note) values (${name}, 0, 'rolled back')`);
          throw new Error('the work failed');
        })
        .catch((e: Error) => e.message);
      expect(failure).toBe('the work failed');
      const second = await elector.transaction(async (tx) => backend(tx));
      expect(second).toBe(first);
      expect(await logged()).toEqual([]);
    } finally {
      await elector.stop();
      await one.close();
    }
  });

  it('work that caught the failure of one of its statements: the aborted transaction is reported, not taken for committed', async () => {
    // The failed statement aborted the transaction; the server answers the COMMIT with ROLLBACK
    // and no error. Where the library sends the COMMIT itself (node-postgres), that is an error.
    const elector = await leader();
    const outcome = await elector
      .transaction(async (tx, lease) => {
        await tx.execute(sql`insert into work_log (name, term, note) values (${name}, ${lease.term}, 'lost')`);
        await tx.execute(sql`select 1 / 0`).catch(() => {});
        return 'ok';
      })
      .then(
        (v) => v,
        (e: Error) => e.name,
      );
    expect(await logged()).toEqual([]);
    // postgres.js rejects such a transaction itself, with the statement's error.
    expect(outcome).toBe(driver === 'node-postgres' ? 'TransactionAbortedError' : 'PostgresError');
  });

  it('refuses before the work runs when this elector does not lead', async () => {
    await leader({ id: 'holder' });
    const follower = pool.create({ name, id: 'other', logger: SILENT_LOGGER });
    await follower.start();
    expect(follower.isLeader).toBe(false);
    let ran = false;
    const error = await follower
      .transaction(async () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeadershipLostError);
    expect((error as LeadershipLostError).reason).toBe('not-leader');
    expect(ran).toBe(false);
  });

  it('refuses when the database no longer holds the term, even while the elector still trusts it', async () => {
    const elector = await leader({ id: 'deposed' });
    const term = elector.lease!.term;
    // A successor takes over behind the elector's back (its lease expired early, by the database's clock).
    await expireLease();
    const won = await leaseStore(admin.db).elect({ name, leaderId: 'successor', ttlMs: 60_000 });
    expect(won.won).toBe(true);
    expect(elector.isLeader).toBe(true); // it has not renewed yet: only the database knows
    let ran = false;
    const error = await elector
      .transaction(async (tx) => {
        ran = true;
        await tx.execute(sql`insert into work_log (name, term) values (${name}, ${term})`);
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeadershipLostError);
    expect((error as LeadershipLostError).reason).toBe('lease-not-held');
    expect(ran).toBe(false);
    expect(await logged()).toEqual([]);
  });

  it('a takeover waits for the open transaction of the old term, which still commits; the new term comes after it', async () => {
    const elector = await leader({ id: 'old' });
    const oldTerm = elector.lease!.term;
    const hold = gate();
    const locked = gate();
    const work = elector.transaction(async (tx, lease) => {
      locked.open();
      await hold.opened;
      await tx.execute(sql`insert into work_log (name, term, note) values (${name}, ${lease.term}, 'old')`);
    });
    await locked.opened;
    await expireLease();
    // The successor's election finds the lease expired and must wait for the old term's lock.
    const takeover = leaseStore(admin.db).elect({ name, leaderId: 'new', ttlMs: 60_000 });
    expect(await pendingAfter(takeover, 500)).toBe(true);
    hold.open();
    await work;
    const result = await takeover;
    expect(result.won).toBe(true);
    if (result.won) expect(result.lease.term).toBeGreaterThan(oldTerm);
    expect(await logged()).toEqual([{ term: oldTerm, note: 'old' }]);
  });

  it("the holder's renewals are never held up by its own transactions, even one longer than the lease", async () => {
    const elector = await leader({ id: 'busy', ttl: 1_000, renewInterval: 100, safetyMargin: 200 });
    const follower = pool.create({ name, id: 'waiting', ttl: 1_000, renewInterval: 100, safetyMargin: 200, logger: SILENT_LOGGER });
    await follower.start();
    const renewalsBefore = elector.stats.renewals.ok;
    const samples: boolean[] = [];
    await elector.transaction(
      async (tx, lease) => {
        for (let i = 0; i < 30; i++) {
          samples.push(elector.isLeader);
          await sleep(50);
        }
        await tx.execute(sql`insert into work_log (name, term, note) values (${name}, ${lease.term}, 'long')`);
      },
      { timeout: 5_000 },
    );
    expect(samples.every(Boolean)).toBe(true); // 1.5 s in a transaction, with a 1 s lease
    expect(elector.stats.renewals.ok - renewalsBefore).toBeGreaterThanOrEqual(8);
    expect(elector.stats.renewals.failed).toBe(0);
    // The follower's elections were denied as usual, never stuck behind the lock.
    expect(follower.stats.elections.failed).toBe(0);
    expect(follower.isLeader).toBe(false);
    expect(await logged()).toHaveLength(1);
  });

  it('a transaction past its timeout is ended and rolls back; nothing it wrote survives, and the lock is gone', async () => {
    const elector = await leader({ id: 'slow' });
    const term = elector.lease!.term;
    const error = await elector
      .transaction(
        async (tx) => {
          await tx.execute(sql`insert into work_log (name, term, note) values (${name}, ${term}, 'too late')`);
          // Idle past the timeout, then finishing as if nothing happened: it must not commit.
          await sleep(600);
          await tx.execute(sql`select 1`);
        },
        { timeout: 400 },
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeadershipLostError);
    expect((error as LeadershipLostError).reason).toBe('timed-out');
    expect(await logged()).toEqual([]);
    // No lock left behind: a takeover goes through at once.
    await expireLease();
    const takeover = leaseStore(admin.db).elect({ name, leaderId: 'next', ttlMs: 60_000 });
    expect(await pendingAfter(takeover, 1_000)).toBe(false);
    expect((await takeover).won).toBe(true);
  });

  it('a transaction busy in a statement past its timeout is ended too, and the process survives it', async () => {
    const elector = await leader({ id: 'busy-slow' });
    const term = elector.lease!.term;
    for (let i = 0; i < 3; i++) {
      const error = await elector
        .transaction(
          async (tx) => {
            await tx.execute(sql`insert into work_log (name, term, note) values (${name}, ${term}, 'too late')`);
            await tx.execute(sql`select pg_sleep(3)`);
            await tx.execute(sql`select 1`);
          },
          { timeout: 300 + i * 100 },
        )
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeadershipLostError);
      expect((error as LeadershipLostError).reason).toBe('timed-out');
    }
    expect(await logged()).toEqual([]);
    // The application's pool still works afterwards.
    await conn.db.execute(sql`select 1`);
  });

  it('a live transaction that keeps sending short statements past its timeout rolls back at its next one, and leaves no open transaction behind', async () => {
    const elector = await leader({ id: 'chatty' });
    const term = elector.lease!.term;
    const started = performance.now();
    let statements = 0;
    const error = await elector
      .transaction(
        async (tx) => {
          await tx.execute(sql`insert into work_log (name, term, note) values (${name}, ${term}, 'chatty')`);
          // A polling loop: short statements, mostly idle between them, for far longer than the timeout.
          while (performance.now() - started < 10_000) {
            await tx.execute(sql`select 1`);
            statements++;
            await sleep(100);
          }
        },
        { timeout: 400 },
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeadershipLostError);
    expect((error as LeadershipLostError).reason).toBe('timed-out');
    // It ended at the first statement after the timeout, not when the loop would have ended.
    expect(statements).toBeLessThan(20);
    expect(await logged()).toEqual([]);
    const open = await admin.query(
      `select 1 from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'`,
    );
    expect(open).toEqual([]);
    await conn.db.execute(sql`select 1`);
  });

  it("passes Drizzle's transaction config through, and the check holds under serializable isolation while renewals run", async () => {
    const elector = await leader({ id: 'iso', ttl: 1_000, renewInterval: 50, safetyMargin: 200 });
    for (let i = 0; i < 20; i++) {
      const level = await elector.transaction(
        async (tx, lease) => {
          await tx.execute(sql`insert into work_log (name, term) values (${name}, ${lease.term})`);
          const rows = (await tx.execute(sql`select current_setting('transaction_isolation') as level`)) as unknown;
          const list = Array.isArray(rows) ? rows : (rows as { rows: unknown[] }).rows;
          return (list[0] as { level: string }).level;
        },
        { isolationLevel: i % 2 ? 'serializable' : 'repeatable read' },
      );
      expect(level).toBe(i % 2 ? 'serializable' : 'repeatable read');
    }
    expect(await logged()).toHaveLength(20);
    // A read-only transaction cannot take the lease lock; a bogus isolation level would reach BEGIN unchecked.
    await expect(elector.transaction(async () => 1, { accessMode: 'read only' })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(elector.transaction(async () => 1, { isolationLevel: 'bogus' as never })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(elector.transaction(async () => 1, { isolation: 'serializable' } as never)).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it('leaseHeld(): a single write goes through only while the term holds the lease, and holds back a takeover until it commits', async () => {
    const elector = await leader({ id: 'writer' });
    const term = elector.lease!.term;
    const write = (db = conn.db, condition = leaseHeld(elector)) =>
      db.execute(sql`insert into work_log (name, term, note) select ${name}, ${term}, 'single' where ${condition}`);
    await write();
    expect(await logged()).toHaveLength(1);

    // Inside the application's own transaction, the lock lasts until that transaction ends.
    const hold = gate();
    const locked = gate();
    const appTx = conn.db.transaction(async (tx) => {
      await tx.execute(sql`insert into work_log (name, term, note) select ${name}, ${term}, 'in tx' where ${leaseHeld(elector)}`);
      locked.open();
      await hold.opened;
    });
    await locked.opened;
    await expireLease();
    const takeover = leaseStore(admin.db).elect({ name, leaderId: 'successor', ttlMs: 60_000 });
    expect(await pendingAfter(takeover, 500)).toBe(true);
    hold.open();
    await appTx;
    expect((await takeover).won).toBe(true);

    // The condition built before the takeover now matches nothing: the old term no longer holds.
    const condition = sql`exists (select 1 from river_leader where name = ${name} and leader_id = 'writer' and term = ${term} and expires_at > statement_timestamp())`;
    await write(conn.db, condition);
    expect((await logged()).map((r) => r.note)).toEqual(['single', 'in tx']);
    // And once the elector knows it lost, building the condition is refused.
    await vi.waitFor(() => expect(elector.isLeader).toBe(false), { timeout: 10_000 });
    expect(() => leaseHeld(elector)).toThrow(LeadershipLostError);
  });
});

/**
 * A copy of the lease table in `schema` without its (name, term) key constraint, `alter`ed
 * further, and a started elector for `name` on it, for `check`.
 */
async function onLeaseTableWithoutKey(schema: string, alter: string[], name: string, check: (elector: Elector) => Promise<void>) {
  const conn = connect('postgres.js', url);
  try {
    await conn.query(`create schema ${schema}`);
    await conn.query(`create table ${schema}.river_leader (like public.river_leader including all)`);
    await conn.query(`alter table ${schema}.river_leader drop constraint river_leader_name_term_key`);
    for (const statement of alter) await conn.query(statement);
    const { createLeaderTable } = await import('../src/index.js');
    const { table } = createLeaderTable({ schema });
    const pool = new ElectorPool(conn);
    const elector = pool.create({ name, table, logger: SILENT_LOGGER });
    await elector.start();
    await check(elector);
    await pool.stopAll();
  } finally {
    await conn.close();
  }
}

describe('lease-checked transactions on a table whose lease key is deferrable', () => {
  it('refuse too: only an immediate, non-partial unique key on plain columns is relied on', async () => {
    await onLeaseTableWithoutKey(
      'deferred_key',
      ['alter table deferred_key.river_leader add constraint river_leader_name_term_key unique (name, term) deferrable'],
      'deferred',
      async (elector) => {
        expect(elector.isLeader).toBe(true);
        await expect(elector.transaction(async () => 1)).rejects.toBeInstanceOf(LeaseTableOutdatedError);
      },
    );
  });
});

describe('lease-checked transactions on a table whose lease key is a bare unique index', () => {
  it('run: a CREATE UNIQUE INDEX makes term a key column just as the constraint does', async () => {
    await onLeaseTableWithoutKey(
      'index_key',
      ['create unique index river_leader_term_idx on index_key.river_leader (name, term)'],
      'indexed',
      async (elector) => {
        expect(await elector.transaction(async (_tx, lease) => lease.term)).toBe(elector.lease?.term);
      },
    );
  });
});

describe('lease-checked transactions on a table without the lease key', () => {
  it('refuse with LeaseTableOutdatedError instead of giving a guarantee they cannot keep', async () => {
    await onLeaseTableWithoutKey('old_shape', [], 'old', async (elector) => {
      expect(elector.isLeader).toBe(true);
      await expect(elector.transaction(async () => 1)).rejects.toBeInstanceOf(LeaseTableOutdatedError);
    });
  });
});
