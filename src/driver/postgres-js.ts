/** The postgres.js adapter: a dedicated LISTEN connection and a dedicated session, both made from the client's own options. */
import type { Options, PostgresType, Sql } from 'postgres';
import type { LeaderDatabase } from '../types.js';
import { errorCode } from '../util/cause.js';
import { SocketTracker } from './sockets.js';
import { sqlListenSession } from './sql-listen.js';
import type { DriverCapabilities, ListenDriver, ListenSession, OwnPool, SessionBounds } from './types.js';

/** postgres.js's codes for a connection that is gone: nothing more may be written to it. */
const POSTGRES_JS_CONNECTION_GONE = new Set(['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED']);

/** True for a postgres.js `Sql` instance (what `drizzle-orm/postgres-js` keeps as `db.$client`). */
export function isPostgresJsClient(client: unknown): client is Sql {
  if (typeof client !== 'function') return false;
  const candidate = client as unknown as { listen?: unknown; options?: { host?: unknown } };
  return typeof candidate.listen === 'function' && Array.isArray(candidate.options?.host);
}

/**
 * LISTEN for postgres.js through a dedicated single-connection instance built from the
 * client's own options. postgres.js's built-in `sql.listen` re-LISTENs after a drop but
 * swallows a failed re-LISTEN (server still down) and never retries; owning the connection
 * lets the shared notifier supervise reconnects for every driver the same way.
 */
export function postgresJsListenDriver(client: Sql | string): ListenDriver {
  return {
    async open(events): Promise<ListenSession> {
      const { default: postgres } = await import('postgres');
      let closing = false;
      // `onnotify` is the option postgres.js's own `sql.listen` is built on; it is not in the
      // published types, hence the cast.
      const base = typeof client === 'string' ? {} : (client.options as unknown as Options<Record<string, PostgresType>>);
      const sockets = new SocketTracker();
      const options = {
        ...base,
        socket: sockets.postgresJsSocket(),
        max: 1,
        idle_timeout: 0, // never closed for idleness: it exists to wait
        max_lifetime: null,
        fetch_types: false,
        prepare: false,
        onnotice: () => {},
        onnotify: (channel: string, payload: string) => events.notification(channel, payload),
        onclose: () => {
          if (!closing) events.closed(new Error('postgres.js LISTEN connection closed'));
        },
      } as Options<Record<string, PostgresType>>;
      const connection = typeof client === 'string' ? postgres(client, options) : postgres(options);
      const close = async () => {
        closing = true;
        await connection.end({ timeout: 1 });
        sockets.destroyAll(); // a partitioned peer never acknowledges the close: do not let it hold the process
      };
      try {
        await connection`select 1`;
      } catch (error) {
        await close().catch(() => {});
        throw error;
      }
      return sqlListenSession(async (text) => void (await connection.unsafe(text)), close);
    },
  };
}

/**
 * Runs `fn` with raw statements on a dedicated connection made from the client's options.
 * Not one reserved from the pool: the migrator runs through that same pool meanwhile, and a
 * pool of one would deadlock (the lock holder waiting for the migrator's connection).
 */
async function withDedicatedConnection<T>(client: Sql, fn: (run: (text: string) => Promise<void>) => Promise<T>): Promise<T> {
  const { default: postgres } = await import('postgres');
  const options = { ...(client.options as unknown as Options<Record<string, PostgresType>>), max: 1, onnotice: () => {} } as Options<
    Record<string, PostgresType>
  >;
  const connection = postgres(options);
  try {
    return await fn(async (text) => void (await connection.unsafe(text)));
  } finally {
    await connection.end({ timeout: 1 });
  }
}

/**
 * The library's own small pool, from the client's options plus session bounds sent at
 * connect. Idle connections stay open long enough to serve the next renewal.
 */
async function openOwnPool(
  client: Sql,
  options: { session: SessionBounds | null; genericPlans: boolean; connectTimeoutMs: number },
): Promise<OwnPool> {
  const bounds = options.session;
  const [{ default: postgres }, { drizzle }] = await Promise.all([import('postgres'), import('drizzle-orm/postgres-js')]);
  const base = client.options as unknown as Options<Record<string, PostgresType>> & { connection?: Record<string, unknown> };
  const connection = bounds
    ? {
        ...base.connection,
        statement_timeout: bounds.statementTimeoutMs,
        lock_timeout: bounds.lockTimeoutMs,
        idle_in_transaction_session_timeout: bounds.idleInTransactionTimeoutMs,
        ...(options.genericPlans ? { plan_cache_mode: 'force_generic_plan' } : {}),
      }
    : base.connection;
  const connect_timeout = Math.min(base.connect_timeout ?? 30, Math.max(1, Math.ceil(options.connectTimeoutMs / 1000)));
  const sockets = new SocketTracker();
  const own = postgres({
    ...base,
    // One connection: a statement prepared on it stays prepared (a second connection would
    // re-prepare on first use, measured at +1-2 ms per handoff); one elector sends one at a time.
    max: 1,
    idle_timeout: 60,
    connect_timeout,
    // The library's statements take no array parameters. postgres.js reads the array types at
    // each connect by default, and a failure of that read (a pooler's query_wait_timeout) is an
    // unhandled rejection inside postgres.js: one that would end the process.
    fetch_types: false,
    onnotice: () => {},
    connection,
    socket: sockets.postgresJsSocket(),
  } as Options<Record<string, PostgresType>>);
  return {
    db: drizzle(own) as unknown as LeaderDatabase,
    reset: () => sockets.destroyAll(),
    close: async () => {
      await own.end({ timeout: 1 });
      sockets.destroyAll();
    },
  };
}

export function postgresJsCapabilities(client: Sql): DriverCapabilities {
  return {
    client,
    listen: postgresJsListenDriver(client),
    transactions: true,
    guardTransaction: null,
    checkOut: null,
    exclusiveTransactions: true,
    // postgres.js 3.4: a reserved connection the server ends (FATAL) while its query runs is
    // left half-reconnected, and the next query written to it throws from a timer
    // ("Cannot read properties of null (reading 'write')"), uncatchable: the process dies.
    // Seen with transaction_timeout and pg_terminate_backend; a server end between queries
    // (idle_in_transaction_session_timeout) and a cancelled statement are handled cleanly.
    sessionEndSafe: false,
    connectionGone: (error) => POSTGRES_JS_CONNECTION_GONE.has(errorCode(error) ?? ''),
    session: (fn) => withDedicatedConnection(client, fn),
    ownPool: (options) => openOwnPool(client, options),
  };
}
