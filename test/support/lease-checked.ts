/**
 * For the lease-checked transaction suites (the single elector's and the group's): the work_log
 * table their work writes into, a lease made to expire behind its holder's back, and the means
 * to hold work open and to tell whether a takeover waits for it.
 */
import { type Connection, connect, createTestDatabase } from './db.js';
import { sleep } from './elector.js';

/** A database of this file's own (migrated) with the work_log table. */
export async function createWorkLogDatabase(): Promise<string> {
  const url = await createTestDatabase();
  const admin = connect('postgres.js', url);
  await admin.query('create table work_log (id serial primary key, name text not null, term bigint not null, note text)');
  await admin.close();
  return url;
}

/** The work logged for `name`, in the order it was written. */
export async function loggedWork(admin: Connection, name: string): Promise<{ term: number; note: string | null }[]> {
  return (
    await admin.query<{ term: string; note: string | null }>('select term, note from work_log where name = $1 order by id', [name])
  ).map((r) => ({ term: Number(r.term), note: r.note }));
}

/** Ends `name`'s lease by the database's clock, while its holder still trusts it. */
export function expireLease(admin: Connection, name: string): Promise<unknown> {
  return admin.query(`update river_leader set expires_at = now() - interval '1 second' where name = $1`, [name]);
}

/** A promise and the function that settles it, for holding work open until the test says so. */
export function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** Whether `promise` is still pending after `ms`. */
export async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const marker = Symbol('pending');
  const outcome = await Promise.race([
    promise.then(
      () => 'settled',
      () => 'settled',
    ),
    sleep(ms).then(() => marker),
  ]);
  return outcome === marker;
}
