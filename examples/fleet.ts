/**
 * Many singletons across replicas, runnable: `npx tsx examples/fleet.ts` (uses DATABASE_URL,
 * or starts a throwaway embedded PostgreSQL). Three "replicas" (three groups in one process,
 * each with its own client, as separate processes would have) share 12 cron jobs; a fourth
 * joins and takes its share; one leaves and the rest take its jobs over.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { startEmbeddedServer } from '../src/dev/embedded-server.js';
import { createElectorGroup, type ElectorGroup, migrate } from '../src/index.js';

const embedded = process.env.DATABASE_URL ? null : await startEmbeddedServer();
const url = process.env.DATABASE_URL ?? embedded!.url;
const clients: postgres.Sql[] = [];
const jobs = Array.from({ length: 12 }, (_, i) => `cron-${String(i + 1).padStart(2, '0')}`);

function replica(id: string): ElectorGroup {
  const client = postgres(url, { max: 2, onnotice: () => {} });
  clients.push(client);
  const group = createElectorGroup(drizzle(client), { names: jobs, group: 'fleet-example', id, ttl: 3_000, renewInterval: 500 });
  group.runWhileLeader(async (name, signal, lease) => {
    // A real job would fence its writes with lease.term, as in the quick start.
    while (!signal.aborted) await sleep(200, undefined, { signal }).catch(() => {});
    void name;
    void lease;
  });
  return group;
}

/** Waits until every job has exactly one leader among `fleet`, with counts within one, and prints them. */
async function settled(label: string, fleet: ElectorGroup[]): Promise<void> {
  const started = performance.now();
  for (;;) {
    const counts = fleet.map((g) => g.leaderships().size);
    const ledOnce = jobs.every((job) => fleet.filter((g) => g.leads(job)).length === 1);
    if (ledOnce && Math.max(...counts) - Math.min(...counts) <= 1) {
      const shown = fleet.map((g) => `${g.id}=${g.leaderships().size}`).join(' ');
      console.log(
        `${label}: ${shown} (spread ${Math.max(...counts) - Math.min(...counts)}, settled in ${Math.round(performance.now() - started)} ms)`,
      );
      return;
    }
    await sleep(20);
  }
}

try {
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  await migrate(drizzle(admin));
  await admin.end();
  const fleet = ['replica-a', 'replica-b', 'replica-c'].map(replica);
  await Promise.all(fleet.map((g) => g.start()));
  await settled('3 replicas', fleet);
  const joiner = replica('replica-d');
  await joiner.start();
  fleet.push(joiner);
  await settled('replica-d joined', fleet);
  const leaving = fleet.shift()!;
  await leaving.stop(); // resigns every job it led, with NOTIFY
  await settled('replica-a left', fleet);
  await Promise.all(fleet.map((g) => g.stop()));
} finally {
  await Promise.all(clients.map((c) => c.end({ timeout: 1 })));
  await embedded?.stop();
}
