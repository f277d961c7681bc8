/**
 * The README's quick start, runnable: `npx tsx examples/quickstart.ts` (uses DATABASE_URL, or
 * starts a throwaway embedded PostgreSQL). Two candidates in one process compete for the
 * `billing-cron` election; the leader runs the job, writing through lease-checked transactions;
 * then it stops (the job returns first) and the other takes over through NOTIFY.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { startEmbeddedServer } from '../src/dev/embedded-server.js';
import { createElector, type Elector, LeadershipLostError, migrate } from '../src/index.js';

const embedded = process.env.DATABASE_URL ? null : await startEmbeddedServer();
const url = process.env.DATABASE_URL ?? embedded!.url;
const client = postgres(url, { max: 4, onnotice: () => {} });
const db = drizzle(client);

try {
  await migrate(db);
  // The resource the leader protects. No fence column needed: every write goes through a
  // lease-checked transaction, which commits only while this term holds the lease.
  await client`create table if not exists quickstart_invoices (id int primary key, term bigint not null, runs int not null)`;
  await client`insert into quickstart_invoices values (1, 0, 0) on conflict do nothing`;

  async function chargeDueInvoices(elector: Elector) {
    try {
      await elector.transaction(async (tx, lease) => {
        await tx.execute(sql`update quickstart_invoices set term = ${lease.term}, runs = runs + 1 where id = 1`);
        console.log(`  [${lease.leaderId}] term ${lease.term}: charged (accepted)`);
      });
    } catch (error) {
      if (!(error instanceof LeadershipLostError)) throw error;
      console.log(`  [${elector.id}] REJECTED: ${error.reason}`);
    }
  }

  const candidates = ['worker-a', 'worker-b'].map((id) => {
    const elector = createElector(db, { name: 'billing-cron', id, ttl: 3_000, renewInterval: 1_000 });
    elector.subscribe((event) =>
      console.log(`${id}: ${event.type} term ${event.term}${event.type === 'lost' ? ` (${event.reason})` : ''}`),
    );
    elector.runWhileLeader(async (signal) => {
      while (!signal.aborted) {
        await chargeDueInvoices(elector);
        await sleep(300, undefined, { signal }).catch(() => {});
      }
    });
    return elector;
  });

  for (const elector of candidates) await elector.start();
  await sleep(1_000);
  const leader = candidates.find((e) => e.isLeader)!;
  const follower = candidates.find((e) => e !== leader)!;
  console.log(`stopping ${leader.id}: its job returns, then it resigns and NOTIFYs, ${follower.id} takes over`);
  const started = performance.now();
  await leader.stop();
  await follower.waitForLeadership();
  console.log(`handoff took ${(performance.now() - started).toFixed(1)} ms`);
  await sleep(1_000);
  await follower.stop();
} finally {
  await client.end();
  await embedded?.stop();
}
