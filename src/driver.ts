/**
 * The seam between the one elector and the many Drizzle Postgres drivers. Queries need no
 * adapter: they are plain Drizzle and run on any driver. Only two things are driver-specific,
 * and each adapter is a thin file of its own: a dedicated LISTEN connection, and a single
 * session to hold a session-level advisory lock (migrations).
 */
import { isNodePostgresClient, nodePostgresAdapter, nodePostgresListenDriver } from './driver-node-postgres.js';
import { isPostgresJsClient, postgresJsAdapter, postgresJsListenDriver } from './driver-postgres-js.js';
import type { ListenDriver } from './notifier.js';
import type { LeaderDatabase } from './queries.js';

export interface DriverAdapter {
  readonly name: string;
  /** Opens dedicated LISTEN connections. */
  readonly listen: ListenDriver;
  /** Runs `fn` with raw statements on one connection held for its whole duration (session-level locks). */
  withSession<T>(fn: (run: (text: string) => Promise<void>) => Promise<T>): Promise<T>;
}

/** The driver client behind a Drizzle database object (`db.$client`). */
export function driverClient(db: LeaderDatabase): unknown {
  return (db as unknown as { $client?: unknown }).$client;
}

/** The adapter for a Drizzle database object, or null for drivers that cannot LISTEN (HTTP drivers): those run poll-only. */
export function driverAdapterFor(db: LeaderDatabase): { client: object; adapter: DriverAdapter } | null {
  const client = driverClient(db);
  if (isPostgresJsClient(client)) return { client, adapter: postgresJsAdapter(client) };
  if (isNodePostgresClient(client)) return { client, adapter: nodePostgresAdapter(client) };
  return null;
}

const urlKeys = new Map<string, object>();

/**
 * LISTEN through its own connection string (`listen: { url }`), for applications whose `db`
 * goes through a transaction-mode pooler: renewals use the pooled `db`, LISTEN a direct or
 * session-pooled connection. Uses postgres.js when installed, else node-postgres.
 */
export function listenDriverForUrl(url: string): { client: object; driver: ListenDriver } {
  const key = urlKeys.get(url) ?? { url };
  urlKeys.set(url, key);
  const driver: ListenDriver = {
    name: 'listen url',
    async open(events) {
      const hasPostgresJs = await import('postgres').then(
        () => true,
        () => false,
      );
      const chosen = hasPostgresJs ? postgresJsListenDriver(url) : nodePostgresListenDriver(url);
      return chosen.open(events);
    },
  };
  return { client: key, driver };
}

/** The LISTEN side of {@link driverAdapterFor}. */
export function listenDriverFor(db: LeaderDatabase): { client: object; driver: ListenDriver } | null {
  const found = driverAdapterFor(db);
  return found ? { client: found.client, driver: found.adapter.listen } : null;
}
