/**
 * Which driver is behind a Drizzle database object, and so what it can do: decided once per
 * object and cached. Queries need no adapter (they are plain Drizzle and run on any driver);
 * only LISTEN and a dedicated session are driver-specific.
 */
import { entityKind } from 'drizzle-orm';
import type { LeaderDatabase } from '../types.js';
import { bunSqlCapabilities, isBunSqlClient } from './bun-sql.js';
import { type AdapterName, driverRow } from './matrix.js';
import { isNodePostgresClient, nodePostgresCapabilities, nodePostgresListenDriver } from './node-postgres.js';
import { isPGliteClient, pgliteCapabilities } from './pglite.js';
import { isPostgresJsClient, postgresJsCapabilities, postgresJsListenDriver } from './postgres-js.js';
import type { DriverCapabilities, ListenDriver } from './types.js';

const NONE: DriverCapabilities = Object.freeze({
  client: null,
  listen: null,
  transactions: false,
  guardTransaction: null,
  checkOut: null,
  exclusiveTransactions: false,
  sessionEndSafe: false,
  connectionGone: null,
  session: null,
  ownPool: null,
});

const detected = new WeakMap<object, DriverCapabilities>();

/** Drizzle's own name for the class of a database object (`NodePgDatabase`, `PgRemoteDatabase`, ...). */
function drizzleKind(db: LeaderDatabase): string | undefined {
  const kind = (db.constructor as unknown as Record<symbol, unknown> | undefined)?.[entityKind];
  return typeof kind === 'string' ? kind : undefined;
}

/** The module (`drizzle-orm/pg-proxy`, ...) a database object comes from, when the driver matrix knows it. */
export function driverModule(db: LeaderDatabase): string | undefined {
  return driverRow(drizzleKind(db))?.module;
}

/**
 * The capabilities of a Drizzle database object. A driver the matrix knows gets its adapter,
 * or none (hosted HTTP and WebSocket drivers: statements through `db`, poll-only, no deadlines,
 * no migrate()) even when its client looks like one we know (Neon's and Vercel's pools look
 * like node-postgres but may have no TCP to open connections with). Unknown database classes
 * (a wrapper, another Drizzle version) are recognised by their client.
 */
export function detectDriver(db: LeaderDatabase): DriverCapabilities {
  const cached = detected.get(db);
  if (cached) return cached;
  const client = (db as unknown as { $client?: unknown }).$client;
  const row = driverRow(drizzleKind(db));
  const expected = row ? row.adapter : undefined;
  const fits = (adapter: AdapterName) => expected === undefined || expected === adapter;
  const capabilities =
    fits('postgres-js') && isPostgresJsClient(client)
      ? postgresJsCapabilities(client)
      : fits('pglite') && isPGliteClient(client)
        ? pgliteCapabilities(client)
        : fits('node-postgres') && isNodePostgresClient(client)
          ? nodePostgresCapabilities(client)
          : fits('bun-sql') && isBunSqlClient(client)
            ? bunSqlCapabilities(client)
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
