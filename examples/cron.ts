/**
 * The README's node-cron section, runnable: `npx tsx examples/cron.ts` (uses DATABASE_URL, or
 * starts a throwaway embedded PostgreSQL). Three instances of an app, each with its own
 * connection, schedule the same every-second task with `distributed: true`; the run
 * coordinator lets exactly one of them run each fire.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { drizzle } from 'drizzle-orm/postgres-js';
import cron from 'node-cron';
import postgres from 'postgres';
import { startEmbeddedServer } from '../src/dev/embedded-server.js';
import { createRunCoordinator, migrate } from '../src/index.js';

const embedded = process.env.DATABASE_URL ? null : await startEmbeddedServer();
const url = process.env.DATABASE_URL ?? embedded!.url;

const setup = postgres(url, { max: 1, onnotice: () => {} });
await migrate(drizzle(setup));
await setup.end();
const runs = new Map<string, string[]>();

function startInstance(instance: string) {
  const db = drizzle(postgres(url, { max: 2, onnotice: () => {} }));
  // --- as in the README ---
  const coordinator = createRunCoordinator(db); // one claim per fire, in the lease table
  const task = cron.schedule(
    '* * * * * *',
    (context) => console.log(`${context.date.toISOString()} ran on ${instance}`),
    { name: 'send-digest', distributed: true, runCoordinator: coordinator }, // or cron.setRunCoordinator(coordinator)
  );
  // ---
  task.on('execution:finished', (context) => {
    const fire = context.date.toISOString();
    runs.set(fire, [...(runs.get(fire) ?? []), instance]);
  });
  return { task, db, coordinator };
}

const instances = ['instance-a', 'instance-b', 'instance-c'].map(startInstance);
try {
  await sleep(4_500);
} finally {
  for (const { task, coordinator, db } of instances) {
    await task.destroy();
    await coordinator.settled();
    await db.$client.end();
  }
  await embedded?.stop();
}
const counts = [...runs.values()].map((who) => who.length);
console.log(`${runs.size} fires, runs per fire: ${[...new Set(counts)].join(', ')}`);
