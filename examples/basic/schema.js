import { bigint, pgTable, serial, text, timestamp } from 'drizzle-orm/pg-core';

// The lease table joins the app's own migrations: drizzle-kit only sees exported tables.
export { riverLeader } from 'drizzle-leader/schema';

/** What the leader-only job writes: one row per run, tagged with the instance and its term. */
export const jobRuns = pgTable('job_runs', {
  id: serial('id').primaryKey(),
  instance: text('instance').notNull(),
  term: bigint('term', { mode: 'number' }).notNull(),
  ranAt: timestamp('ran_at', { withTimezone: true }).notNull().defaultNow(),
});
