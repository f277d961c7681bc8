/**
 * Renewals through a transaction-mode PgBouncer, LISTEN through a direct connection
 * (`listen: { url }`). Uses Debian's pgbouncer (installed by .ci/run), started on loopback.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle } from 'drizzle-orm/postgres-js';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { electMany, heartbeat, leaseStore, NO_DEADLINE, renewMany, resignMany } from '../src/dev/testing.js';
import {
  createElector,
  createElectorGroup,
  type DatabaseUnusableError,
  type LeaderDatabase,
  riverLeader,
  SILENT_LOGGER,
} from '../src/index.js';
import { createTestDatabase } from './support/db.js';

const binary = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'].find((p) => existsSync(p));
if (!binary) console.log('pooler test skipped: pgbouncer is not installed (.ci/run installs it from Debian packages)');

describe.skipIf(!binary)('behind PgBouncer in transaction mode', () => {
  let directUrl: string;
  let pooledUrl: string;
  let bouncer: Bouncer;

  beforeAll(async () => {
    directUrl = await createTestDatabase();
    bouncer = await startBouncer(directUrl, { default_pool_size: '4' });
    pooledUrl = bouncer.url;
  });

  afterAll(() => bouncer?.stop());

  it('renews through the pooler and hands off through NOTIFY on the direct connection', async () => {
    // Transaction pooling: no prepared statements, no session state.
    const pooled = postgres(pooledUrl, { max: 4, prepare: false, onnotice: () => {} });
    const db = drizzle(pooled) as unknown as LeaderDatabase;
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (_f: object, message: string) => void warnings.push(message) };
    const options = { name: 'pooled', ttl: 3_000, renewInterval: 300, safetyMargin: 500, listen: { url: directUrl }, logger };
    const leader = createElector(db, { ...options, id: 'leader' });
    const follower = createElector(db, { ...options, id: 'follower' });
    try {
      await leader.start();
      await follower.start();
      const term = leader.lease!.term;
      await new Promise((r) => setTimeout(r, 1_500)); // several renewals through PgBouncer
      expect(leader.isLeader).toBe(true);
      expect(leader.lease!.term).toBe(term);
      expect(leader.stats.renewals.ok).toBeGreaterThanOrEqual(3);
      expect(leader.stats.renewals.failed).toBe(0);
      const started = performance.now();
      await leader.stop();
      await follower.waitForLeadership();
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(warnings.filter((w) => /did not receive a notification/.test(w))).toEqual([]);
    } finally {
      await Promise.all([leader.stop(), follower.stop()]);
      await pooled.end();
    }
  });

  it("node-postgres through it: the pooler's refusals of named statements are healed at once, every statement answers", async () => {
    // PgBouncer 1.18 (Debian's) in transaction mode has no prepared-statement support: a named
    // statement Parsed on one server connection is unknown (or already there) on the next.
    // Concurrent calls on a pool of 4 spread each client's statements over the server
    // connections. Before: the single election failed 1 call in 5, the group's batches (once
    // named) 19 in 20.
    const pool = new pg.Pool({ connectionString: pooledUrl, max: 4 });
    const db = drizzlePg(pool) as unknown as LeaderDatabase;
    const store = leaseStore(db);
    const failures: string[] = [];
    const record = (error: unknown) => void failures.push(String((error as { cause?: unknown }).cause ?? error).slice(0, 120));
    let calls = 0;
    try {
      for (let round = 0; round < 20; round++) {
        await Promise.all(
          Array.from({ length: 6 }, async (_, i) => {
            const id = `pg-${round}-${i}`;
            const names = [`pg-a-${round}-${i}`, `pg-b-${round}-${i}`];
            try {
              const won = await electMany(db, riverLeader, { names, leaderId: id, ttlMs: 30_000, channel: null });
              const held = won.flatMap((o) => (o.won ? [{ name: o.name, term: o.lease.term }] : []));
              await renewMany(db, riverLeader, { leaderships: held, leaderId: id, ttlMs: 30_000 });
              await heartbeat(db, riverLeader, {
                memberName: `pg-member-${id}`,
                prefix: 'pg-member-',
                channel: null,
                leaderId: id,
                ttlMs: 30_000,
              });
              await resignMany(db, riverLeader, { leaderships: held, leaderId: id, channel: null });
              const single = await store.elect({ name: `pg-single-${round}-${i}`, leaderId: id, ttlMs: 30_000, channel: null });
              if (single.won)
                await store.renew({ name: `pg-single-${round}-${i}`, leaderId: id, term: single.lease.term, ttlMs: 30_000 }, NO_DEADLINE);
              calls += 6;
            } catch (error) {
              record(error);
            }
          }),
        );
      }
      expect(failures).toEqual([]);
      expect(calls).toBe(20 * 6 * 6);
    } finally {
      await pool.end();
    }
  });

  it('node-postgres through it: an elector group and a single elector win, renew and hand off with no failed statement', async () => {
    const pool = new pg.Pool({ connectionString: pooledUrl, max: 4 });
    const db = drizzlePg(pool) as unknown as LeaderDatabase;
    const timings = { ttl: 3_000, renewInterval: 300, safetyMargin: 500, listen: { url: directUrl } };
    const names = Array.from({ length: 12 }, (_, i) => `pg-group-${i}`);
    const groups = ['g1', 'g2'].map((id) => createElectorGroup(db, { ...timings, names, group: 'pooled', id }));
    const leader = createElector(db, { ...timings, name: 'pg-pooled', id: 'leader' });
    const follower = createElector(db, { ...timings, name: 'pg-pooled', id: 'follower' });
    try {
      await Promise.all([...groups.map((g) => g.start()), leader.start()]);
      await follower.start();
      await vi.waitFor(
        () => {
          const counts = groups.map((g) => g.leaderships().size);
          expect(counts[0]! + counts[1]!).toBe(names.length);
          expect(Math.abs(counts[0]! - counts[1]!)).toBeLessThanOrEqual(1);
        },
        { timeout: 10_000, interval: 50 },
      );
      await new Promise((r) => setTimeout(r, 1_500)); // several renewals through PgBouncer
      for (const g of groups) expect(g.stats.statements.failed).toBe(0);
      expect(leader.stats.renewals.ok).toBeGreaterThanOrEqual(3);
      expect(leader.stats.renewals.failed).toBe(0);
      await groups[0]!.stop();
      await vi.waitFor(() => expect(groups[1]!.leaderships().size).toBe(names.length), { timeout: 5_000, interval: 20 });
      await leader.stop();
      await follower.waitForLeadership();
      expect(groups[1]!.stats.statements.failed).toBe(0);
      expect(follower.stats.elections.failed).toBe(0);
    } finally {
      await Promise.all([...groups.map((g) => g.stop()), leader.stop(), follower.stop()]);
      await pool.end();
    }
  });

  it('a pooler with no free server connection for now (query_wait_timeout) delays start, never ends it: the elector leads once one is free', async () => {
    // Before: PgBouncer's 08P01 "query_wait_timeout" was read as "not PostgreSQL", and start()
    // rejected with DatabaseUnusableError, the elector stopped for good.
    const busy = await startBouncer(directUrl, { default_pool_size: '1', query_wait_timeout: '1' });
    const holder = postgres(busy.url, { max: 1, prepare: false, onnotice: () => {} });
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (_f: object, message: string) => void warnings.push(message) };
    const elector = createElector(
      drizzle(postgres(busy.url, { max: 2, prepare: false, onnotice: () => {} })) as unknown as LeaderDatabase,
      {
        name: 'pooler-busy',
        id: 'patient',
        ttl: 6_000,
        renewInterval: 500,
        safetyMargin: 1_000,
        listen: { url: directUrl },
        logger,
      },
    );
    let release = () => {};
    const held = holder.begin(async (tx) => {
      await tx`select 1`;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    try {
      await new Promise((r) => setTimeout(r, 200)); // the pool's one server connection is now in the transaction
      await elector.start(); // resolves as a follower instead of rejecting
      expect(elector.isLeader).toBe(false);
      expect(warnings.join('\n')).toMatch(/turned the request away for now \(query_wait_timeout\)/);
      release();
      await held;
      await elector.waitForLeadership();
      expect(elector.isLeader).toBe(true);
    } finally {
      release();
      await elector.stop();
      await holder.end({ timeout: 1 });
      busy.stop();
    }
  });

  it("a database that does not exist behind the pooler (its 08P01 passes the server's error on) is said as an error with its fix, not as a busy pooler", async () => {
    // PgBouncer answers a client only once its own server login has failed (and in between with
    // "server login has been failing, try again later"), so the first attempt may time out and
    // start() resolve as a follower; what it must not do is call a missing database a busy
    // pooler. Before: every 08P01 but PgBouncer's own wording was "retrying" for good, no error.
    const wrong = new URL(directUrl);
    wrong.pathname = '/no_such_database_here';
    const missing = await startBouncer(wrong.toString(), { server_login_retry: '1' });
    const errors: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn() {},
      error: (o: object, m: string) => void errors.push(`${m} ${String((o as { err?: unknown }).err)}`),
    };
    const client = postgres(missing.url, { max: 1, prepare: false, onnotice: () => {} });
    const elector = createElector(drizzle(client) as unknown as LeaderDatabase, {
      name: 'missing-db',
      ttl: 3_000,
      renewInterval: 300,
      safetyMargin: 500,
      listen: false,
      logger,
    });
    try {
      const started = await elector.start().then(
        () => null,
        (e: Error) => e,
      );
      if (started) expect((started as DatabaseUnusableError).kind).toBe('database-missing');
      else
        await vi.waitFor(() => expect(errors.join('\n')).toMatch(/retrying cannot fix it.*no_such_database_here.*does not exist/s), {
          timeout: 20_000,
          interval: 100,
        });
      expect(elector.isLeader).toBe(false);
    } finally {
      await elector.stop();
      await client.end({ timeout: 1 });
      missing.stop();
    }
  });

  it('with LISTEN through the transaction-mode pooler, it notices that nothing is delivered and says how to fix it, once', async () => {
    const pooled = postgres(pooledUrl, { max: 4, prepare: false, onnotice: () => {} });
    const db = drizzle(pooled) as unknown as LeaderDatabase;
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (_f: object, message: string) => void warnings.push(message) };
    const a = createElector(db, { name: 'pooled-listen', id: 'a', ttl: 3_000, renewInterval: 300, safetyMargin: 500, logger });
    const b = createElector(db, { name: 'pooled-listen', id: 'b', ttl: 3_000, renewInterval: 300, safetyMargin: 500, logger });
    try {
      await a.start();
      await b.start();
      await vi.waitFor(() => expect(warnings.filter((w) => /did not receive a notification/.test(w))).toHaveLength(1), {
        timeout: 10_000,
        interval: 50,
      });
      expect(warnings.find((w) => /did not receive/.test(w))).toMatch(/Pass listen: \{ url: DIRECT_URL \}/);
      await new Promise((r) => setTimeout(r, 500));
      expect(warnings.filter((w) => /did not receive a notification/.test(w))).toHaveLength(1); // once per database, not per elector
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await pooled.end();
    }
  });
});

interface Bouncer {
  readonly url: string;
  stop(): void;
}

/** A transaction-mode PgBouncer in front of `directUrl`'s database, on loopback, with `settings` added. */
async function startBouncer(directUrl: string, settings: Record<string, string>): Promise<Bouncer> {
  const direct = new URL(directUrl);
  const dir = mkdtempSync(join(tmpdir(), 'drizzle-leader-pgbouncer-'));
  chmodSync(dir, 0o777);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const database = direct.pathname.slice(1);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${database} = host=${direct.hostname} port=${direct.port || 5432} dbname=${database} user=${decodeURIComponent(direct.username)} password=${decodeURIComponent(direct.password)}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = any',
      'pool_mode = transaction',
      'max_client_conn = 100',
      'ignore_startup_parameters = extra_float_digits,options',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      ...Object.entries(settings).map(([key, value]) => `${key} = ${value}`),
    ].join('\n'),
  );
  chmodSync(join(dir, 'pgbouncer.ini'), 0o644);
  // PgBouncer refuses to run as root; -u switches to an unprivileged user.
  const asRoot = process.getuid?.() === 0 ? ['-u', 'postgres'] : [];
  const child: ChildProcess = spawn(binary!, [...asRoot, join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port);
  return {
    url: `postgres://${direct.username}@127.0.0.1:${port}/${database}`,
    stop() {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = netConnect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`pgbouncer did not listen on ${port}`);
}
