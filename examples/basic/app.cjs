// The same job from a CommonJS app: require() resolves drizzle-leader's CommonJS build.
const { setTimeout: sleep } = require('node:timers/promises');
const { drizzle } = require('drizzle-orm/postgres-js');
const { bigint, pgTable, serial, text, timestamp } = require('drizzle-orm/pg-core');
const { createElector } = require('drizzle-leader');
const postgres = require('postgres');

const jobRuns = pgTable('job_runs', {
  id: serial('id').primaryKey(),
  instance: text('instance').notNull(),
  term: bigint('term', { mode: 'number' }).notNull(),
  ranAt: timestamp('ran_at', { withTimezone: true }).notNull().defaultNow(),
});

async function main() {
  const instance = process.env.INSTANCE || `pid-${process.pid}`;
  const client = postgres(process.env.DATABASE_URL, { max: 2 });
  const db = drizzle(client);
  const elector = createElector(db, { name: 'example-job', id: instance, ttl: 3000, renewInterval: 1000 });

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
}

main();
