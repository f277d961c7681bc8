/**
 * The README's quick start, runnable: `npx tsx examples/quickstart.ts` (uses DATABASE_URL, or
 * starts a throwaway embedded PostgreSQL). Two candidates in one process compete for the
 * `billing-cron` election; the leader runs the job, fenced by its term; then it stops and the
 * other takes over through NOTIFY.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { startEmbeddedServer } from '../src/dev/embedded-server.js';
import { createElector, type Lease, migrate } from '../src/index.js';

const embedded = process.env.DATABASE_URL ? null : await startEmbeddedServer();
const url = process.env.DATABASE_URL ?? embedded!.url;
const client = postgres(url, { max: 4, onnotice: () => {} });
const db = drizzle(client);

try {
  await migrate(db);
  // The resource the leader protects: it only accepts writes from the newest term (fencing).
  await client`create table if not exists quickstart_invoices (id int primary key, term bigint not null, runs int not null)`;
  await client`insert into quickstart_invoices values (1, 0, 0) on conflict do nothing`;

  async function chargeDueInvoices(lease: Lease) {
    const accepted = await client`
      update quickstart_invoices set term = ${lease.term}, runs = runs + 1
      where id = 1 and term <= ${lease.term} returning runs`;
    console.log(`  [${lease.leaderId}] term ${lease.term}: charged (${accepted.length ? 'accepted' : 'REJECTED: stale term'})`);
  }

  const candidates = ['worker-a', 'worker-b'].map((id) => {
    const elector = createElector(db, { name: 'billing-cron', id, ttl: 3_000, renewInterval: 1_000 });
    elector.subscribe((event) =>
      console.log(`${id}: ${event.type} term ${event.term}${event.type === 'lost' ? ` (${event.reason})` : ''}`),
    );
    elector.runWhileLeader(async (signal, lease) => {
      while (!signal.aborted) {
        await chargeDueInvoices(lease);
        await sleep(300, undefined, { signal }).catch(() => {});
      }
    });
    return elector;
  });

  for (const elector of candidates) await elector.start();
  await sleep(1_000);
  const leader = candidates.find((e) => e.isLeader)!;
  const follower = candidates.find((e) => e !== leader)!;
  console.log(`stopping ${leader.id}: it resigns and NOTIFYs, ${follower.id} takes over`);
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
