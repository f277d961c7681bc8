// A leader-only job in an ordinary Drizzle app (ESM): every instance campaigns, only the
// leader runs the job, and SIGTERM hands the job over to another instance at once.
import { setTimeout as sleep } from 'node:timers/promises';
import { createElector } from 'drizzle-leader';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { jobRuns } from './schema.js';

const instance = process.env.INSTANCE ?? `pid-${process.pid}`;
const client = postgres(process.env.DATABASE_URL, { max: 2 });
const db = drizzle(client);

const elector = createElector(db, { name: 'example-job', id: instance, ttl: 3_000, renewInterval: 1_000 });

elector.runWhileLeader(async (signal, lease) => {
  console.log(`${instance}: leading (term ${lease.term})`);
  while (!signal.aborted) {
    await db.insert(jobRuns).values({ instance, term: lease.term });
    await sleep(100, undefined, { signal }).catch(() => {});
  }
  console.log(`${instance}: stopped leading`);
});

await elector.start();
console.log(`${instance}: started`);

process.once('SIGTERM', async () => {
  await elector.stop();
  await client.end();
  process.exit(0);
});
