/**
 * The bun-sql adapter (`drizzle-orm/bun-sql`, Bun's built-in `SQL` client). Statements and
 * transactions go through `db` (Bun's own pool). LISTEN runs on a dedicated postgres.js (else
 * node-postgres) connection made from the client's settings, not on Bun's `sql.listen`: that
 * one says nothing when its connection drops, and the shared notifier needs to hear it to
 * LISTEN again and have every elector re-check the lease.
 */
import { nodePostgresListenDriver } from './node-postgres.js';
import { postgresJsListenDriver } from './postgres-js.js';
import type { DriverCapabilities, ListenDriver, WithSession } from './types.js';

interface BunSqlOptions {
  readonly adapter?: string;
  readonly hostname?: string;
  readonly port?: number;
  readonly username?: string;
  readonly password?: string;
  readonly database?: string;
  readonly tls?: unknown;
  readonly sslMode?: number;
  readonly path?: string;
}

interface BunSqlClient {
  readonly options: BunSqlOptions;
  unsafe(text: string): Promise<unknown>;
  close(options?: { timeout?: number }): Promise<void>;
}

/** True for a Bun `SQL` instance speaking PostgreSQL (what `drizzle-orm/bun-sql` keeps as `db.$client`). */
export function isBunSqlClient(client: unknown): client is BunSqlClient {
  // The instance is callable (a tagged template), so a function with these members.
  if (typeof client !== 'function') return false;
  const candidate = client as unknown as { listen?: unknown; reserve?: unknown; unsafe?: unknown; options?: BunSqlOptions };
  return (
    typeof candidate.listen === 'function' &&
    typeof candidate.reserve === 'function' &&
    typeof candidate.unsafe === 'function' &&
    candidate.options?.adapter === 'postgres'
  );
}

/** The client's settings as a connection string, for a LISTEN connection through another driver. */
export function bunSqlUrl(options: BunSqlOptions): string {
  const user = encodeURIComponent(options.username ?? '');
  const password = options.password ? `:${encodeURIComponent(options.password)}` : '';
  const url = new URL(`postgres://${user}${password}@${options.hostname ?? 'localhost'}:${options.port ?? 5432}`);
  url.pathname = `/${encodeURIComponent(options.database ?? '')}`;
  if (options.tls || (options.sslMode ?? 0) !== 0) url.searchParams.set('sslmode', 'require');
  return url.toString();
}

function bunSqlListenDriver(client: BunSqlClient): ListenDriver {
  const url = bunSqlUrl(client.options);
  return {
    async open(events) {
      const hasPostgresJs = await import('postgres').then(
        () => true,
        () => false,
      );
      const hasPg =
        hasPostgresJs ||
        (await import('pg').then(
          () => true,
          () => false,
        ));
      if (!hasPg) {
        throw new Error('drizzle-orm/bun-sql: LISTEN needs the postgres (or pg) package installed; install it, or pass listen: false');
      }
      return (hasPostgresJs ? postgresJsListenDriver(url) : nodePostgresListenDriver(url)).open(events);
    },
  };
}

/**
 * A dedicated single-connection Bun client for migrate()'s advisory lock: the migrator runs
 * through the application's pool meanwhile, which a connection reserved from that same pool
 * could starve (a pool of one would deadlock).
 */
function bunSqlSession(client: BunSqlClient): WithSession {
  return async (fn) => {
    const Constructor = client.constructor as unknown as new (options: BunSqlOptions & { max: number }) => BunSqlClient;
    const dedicated = new Constructor({ ...client.options, max: 1 });
    try {
      return await fn(async (text) => void (await dedicated.unsafe(text)));
    } finally {
      await dedicated.close({ timeout: 1 });
    }
  };
}

export function bunSqlCapabilities(client: BunSqlClient): DriverCapabilities {
  return {
    client,
    listen: bunSqlListenDriver(client),
    transactions: true,
    guardTransaction: null,
    checkOut: null,
    exclusiveTransactions: true,
    // Not tried against Bun's client: statements are only cancelled from outside, as for postgres.js.
    sessionEndSafe: false,
    connectionGone: null,
    session: bunSqlSession(client),
    // Statements go through `db`: Bun's pool takes no per-connection startup settings here.
    ownPool: null,
  };
}
