/**
 * One candidate process, forked by the demo, the fault suite, the failover test and the
 * benchmarks (talks to its parent over IPC). It campaigns with its own pool and LISTEN
 * connection and, while it leads, does "leader work" in one of three ways (`DEMO_WRITE`):
 *
 * - `fenced` (default): takes a wall-clock timestamp, checks its lease, and records
 *   `(timestamp, term, pid)` through a write fenced by the term, so a stale leader's write is
 *   rejected by the database;
 * - `transaction`: through `elector.transaction`, increments one counter row (which orders the
 *   writes by commit) and appends `(counter, term, pid)` to a ledger with no fence column;
 * - `unchecked`: the same write in a plain transaction after an `isLeader` check: what the
 *   lease-checked transaction is there to replace (the fault suite shows it going wrong).
 *
 * A `freeze` message makes the next ledger transaction stop the process (SIGSTOP) right after
 * its lease check. `DEMO_TX_HOLD_MS` keeps each ledger transaction open that long before its counter update
 * (after the lease check), so a pause or a partition can land inside it. `DEMO_DRIVER=node-postgres` uses pg instead of
 * postgres.js.
 */
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle } from 'drizzle-orm/postgres-js';
import pg from 'pg';
import postgres from 'postgres';
import { createElector, createLeaderTable, type LeaderDatabase, LeadershipLostError, SILENT_LOGGER } from '../index.js';
import { type CandidateMessage, type ParentMessage, wallNow } from './candidate-protocol.js';

const env = (key: string) => {
  const value = process.env[key];
  if (!value) throw new Error(`demo candidate: ${key} is not set`);
  return value;
};

async function main() {
  const url = env('DEMO_URL');
  const name = env('DEMO_NAME');
  const schema = env('DEMO_SCHEMA');
  const id = env('DEMO_ID');
  const [ttl, renewInterval, safetyMargin] = env('DEMO_TIMINGS').split(',').map(Number) as [number, number, number];
  const send = (message: CandidateMessage) => {
    if (process.connected) process.send?.(message);
  };

  const workEveryMs = Number(process.env.DEMO_WORK_MS ?? 25);
  // application_name lets an operator (or the fault tests) find this process's connections.
  const client = postgres(url, { max: 2, onnotice: () => {}, backoff: () => 0.2, connection: { application_name: id } });
  const write = process.env.DEMO_WRITE ?? 'fenced';
  const holdMs = Number(process.env.DEMO_TX_HOLD_MS ?? 0);
  const pgPool = process.env.DEMO_DRIVER === 'node-postgres' ? new pg.Pool({ connectionString: url, max: 2, application_name: id }) : null;
  // A connection the server ends while idle in the pool must not take the process down.
  pgPool?.on('error', () => {});
  const db = (pgPool ? drizzlePg(pgPool) : drizzle(client)) as unknown as LeaderDatabase;
  // CANDIDATE_LOG=debug|info writes the elector's log from that level up to stderr, one timestamped line each (debugging fault runs).
  const quiet = process.env.CANDIDATE_LOG !== 'debug';
  const log =
    (level: string) =>
    (fields: object, message: string): void => {
      const err = (fields as { err?: Error }).err;
      process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${id} ${level} ${message}${err ? `: ${err.message}` : ''}\n`);
    };
  const logger = process.env.CANDIDATE_LOG
    ? { debug: quiet ? () => {} : log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
    : SILENT_LOGGER; // the parent narrates; the elector's own warnings would interleave with it
  // DEMO_LEASE_SCHEMA: campaign in a lease table of that schema (the demo's scratch schema) instead of public.river_leader.
  const leaseSchema = process.env.DEMO_LEASE_SCHEMA;
  const table = leaseSchema ? createLeaderTable({ schema: leaseSchema, table: 'river_leader' }).table : undefined;
  const elector = createElector(db, { name, id, ttl, renewInterval, safetyMargin, logger, table });
  elector.subscribe((event) =>
    send({
      type: 'transition',
      pid: process.pid,
      event: event.type,
      term: event.term,
      reason: event.type === 'lost' ? event.reason : undefined,
      at: wallNow(),
    }),
  );

  let stopping = false;
  let freezeAsked = false;
  process.on('message', async (message: ParentMessage) => {
    if (message.type === 'freeze') {
      freezeAsked = true;
      return;
    }
    if (message.type === 'stats') {
      send({ type: 'stats', pid: process.pid, stats: elector.stats });
      return;
    }
    if (message.type !== 'stop' || stopping) return;
    stopping = true;
    send({ type: 'stopping', pid: process.pid, at: wallNow() });
    await elector.stop();
    await client.end({ timeout: 1 });
    await pgPool?.end().catch(() => {});
    process.disconnect?.();
    process.exit(0);
  });
  // The parent is gone (Ctrl-C, crash): do not linger.
  process.on('disconnect', () => process.exit(0));

  await elector.start();
  send({ type: 'ready', pid: process.pid, id });

  const fence = client(schema);
  const ledger = sql.identifier(schema);
  /** The ledger write: the counter orders commits; the row says which term of which process committed. */
  const appendToLedger = async (tx: Pick<LeaderDatabase, 'execute'>, term: number) => {
    if (freezeAsked) {
      freezeAsked = false;
      // The callback runs once the message is written, so the parent hears of the freeze.
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.kill(process.pid, 'SIGSTOP');
          resolve();
        };
        if (process.connected && process.send)
          process.send({ type: 'freezing', pid: process.pid, term, at: wallNow() } satisfies CandidateMessage, stop);
        else stop();
      });
    }
    // The gap between deciding to write and writing, where a real job computes what to write.
    if (holdMs > 0) await new Promise((resolve) => setTimeout(resolve, holdMs));
    await tx.execute(sql`update ${ledger}.counter set n = n + 1 where id = 1`);
    await tx.execute(
      sql`insert into ${ledger}.ledger (n, term, pid) select n, ${term}, ${process.pid} from ${ledger}.counter where id = 1`,
    );
  };
  while (!stopping && write !== 'fenced') {
    const at = wallNow();
    const lease = elector.lease;
    if (lease) {
      try {
        if (write === 'transaction') {
          await elector.transaction((tx, held) => appendToLedger(tx, held.term));
        } else {
          await db.transaction((tx) => appendToLedger(tx, lease.term));
        }
        send({ type: 'action', pid: process.pid, term: lease.term, at, accepted: true });
      } catch (error) {
        if (error instanceof LeadershipLostError) send({ type: 'action', pid: process.pid, term: lease.term, at, accepted: false });
        else send({ type: 'error', pid: process.pid, message: String((error as Error).message ?? error) });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, workEveryMs));
  }
  while (!stopping) {
    const at = wallNow(); // taken BEFORE the leadership check, as a real job would
    const lease = elector.lease;
    if (lease) {
      try {
        const [row] = await client`
          with fenced as (
            update ${fence}.fence set term = ${lease.term}, writes = writes + 1
            where id = 1 and term <= ${lease.term} returning 1)
          insert into ${fence}.actions (at, term, pid, accepted)
          values (${at}, ${lease.term}, ${process.pid}, exists (select 1 from fenced))
          returning accepted`;
        send({ type: 'action', pid: process.pid, term: lease.term, at, accepted: Boolean(row?.accepted) });
      } catch (error) {
        send({ type: 'error', pid: process.pid, message: String((error as Error).message ?? error) });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, workEveryMs));
  }
}

main().catch((error) => {
  process.send?.({ type: 'error', pid: process.pid, message: String(error?.stack ?? error) });
  process.exit(1);
});
