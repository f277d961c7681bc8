/**
 * Which driver is behind a Drizzle database object, and so what it can do: decided once per
 * object and cached. Queries need no adapter (they are plain Drizzle and run on any driver);
 * only LISTEN and a dedicated session are driver-specific.
 */
import type { LeaderDatabase } from '../types.js';
import { isNodePostgresClient, nodePostgresCapabilities, nodePostgresListenDriver } from './node-postgres.js';
import { isPGliteClient, pgliteCapabilities } from './pglite.js';
import { isPostgresJsClient, postgresJsCapabilities, postgresJsListenDriver } from './postgres-js.js';
import type { DriverCapabilities, ListenDriver } from './types.js';

const NONE: DriverCapabilities = Object.freeze({ client: null, listen: null, transactions: false, session: null, ownPool: null });

const detected = new WeakMap<object, DriverCapabilities>();

/** The capabilities of a Drizzle database object. Unknown drivers (HTTP) get none: poll-only, no deadlines, no migrate(). */
export function detectDriver(db: LeaderDatabase): DriverCapabilities {
  const cached = detected.get(db);
  if (cached) return cached;
  const client = (db as unknown as { $client?: unknown }).$client;
  const capabilities = isPostgresJsClient(client)
    ? postgresJsCapabilities(client)
    : isPGliteClient(client)
      ? pgliteCapabilities(client)
      : isNodePostgresClient(client)
        ? nodePostgresCapabilities(client)
        : NONE;
  detected.set(db, capabilities);
  return capabilities;
}

const urlKeys = new Map<string, object>();

/**
 * LISTEN through its own connection string (`listen: { url }`), for applications whose `db`
 * goes through a transaction-mode pooler: statements use the pooled `db`, LISTEN a direct or
 * session-pooled connection. Uses postgres.js when installed, else node-postgres. The returned
 * `client` is a stable key per URL, so every elector of the process shares one connection.
 */
export function listenDriverForUrl(url: string): { client: object; driver: ListenDriver } {
  let client = urlKeys.get(url);
  if (!client) {
    client = { url };
    urlKeys.set(url, client);
  }
  const driver: ListenDriver = {
    async open(events) {
      const hasPostgresJs = await import('postgres').then(
        () => true,
        () => false,
      );
      const chosen = hasPostgresJs ? postgresJsListenDriver(url) : nodePostgresListenDriver(url);
      return chosen.open(events);
    },
  };
  return { client, driver };
}
