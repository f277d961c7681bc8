/** The node-postgres adapter: a dedicated LISTEN `Client` and a dedicated session, both made from the pool's or client's settings. */
import type { Client, ClientConfig, Pool, PoolClient } from 'pg';
import type { LeaderDatabase } from '../types.js';
import { withDeadline } from '../util/deadline.js';
import { SocketTracker } from './sockets.js';
import { sqlListenSession } from './sql-listen.js';
import type { CheckedOut, DriverCapabilities, ListenDriver, ListenSession, OwnPool, SessionBounds, TransactionGuard } from './types.js';

type NodePostgresClient = Pool | Client;

/** True for a node-postgres `Pool` or `Client` (what `drizzle-orm/node-postgres` keeps as `db.$client`). */
export function isNodePostgresClient(client: unknown): client is NodePostgresClient {
  const candidate = client as { connect?: unknown; query?: unknown; options?: unknown; connectionParameters?: unknown } | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.connect === 'function' &&
    typeof candidate.query === 'function' &&
    (typeof candidate.options === 'object' || typeof candidate.connectionParameters === 'object')
  );
}

function connectionConfig(client: NodePostgresClient): ClientConfig {
  if ('options' in client && client.options) return { ...(client.options as ClientConfig) };
  const params = (client as unknown as { connectionParameters: ClientConfig & { password?: string } }).connectionParameters;
  return {
    user: params.user,
    password: (client as unknown as { password?: string }).password ?? params.password,
    host: params.host,
    port: params.port,
    database: params.database,
    ssl: params.ssl,
    options: (params as { options?: string }).options,
  };
}

/** The connection settings node-postgres resolves, which the own pool passes on as they are. */
const RESOLVED_KEYS = [
  'user',
  'password',
  'host',
  'port',
  'database',
  'binary',
  'ssl',
  'sslnegotiation',
  'client_encoding',
  'replication',
  'application_name',
  'fallback_application_name',
  'options',
] as const;

/**
 * The application's settings as node-postgres itself resolves them (its connection string over
 * its config over the PG* environment: the driver's own parser, so every URL form, encoding and
 * repeated parameter means what it means to the application's pool), with no connection string
 * left: node-postgres reads one after the config, so a URL's `?statement_timeout=` would
 * otherwise replace the elector's bound, and its `options` the library's.
 */
function resolvedConfig(ClientClass: typeof Client, config: ClientConfig): ClientConfig & { options?: string } {
  // Only what the parameters are resolved from: a client built from the whole config would call
  // the application's stream factory, if it has one. Nothing connects.
  const from: Record<string, unknown> = { connectionString: config.connectionString };
  for (const key of RESOLVED_KEYS) from[key] = (config as Record<string, unknown>)[key];
  const resolved = (new ClientClass(from as ClientConfig) as unknown as { connectionParameters: Record<string, unknown> })
    .connectionParameters;
  const { connectionString: _, ...rest } = config;
  const own: Record<string, unknown> = { ...rest };
  for (const key of RESOLVED_KEYS) if (resolved[key] !== undefined) own[key] = resolved[key];
  return own as ClientConfig & { options?: string };
}

async function pgModule(): Promise<{ Client: typeof Client; Pool: typeof Pool }> {
  const pg = await import('pg');
  return (pg.default ?? pg) as unknown as { Client: typeof Client; Pool: typeof Pool };
}

/**
 * The library's own small pool, from the pool's or client's settings plus session bounds sent
 * at connect (as `-c` options). A bare `Client` shared with the application would run election
 * statements inside the application's transactions; this pool never can.
 */
async function openOwnPool(
  client: NodePostgresClient,
  options: { session: SessionBounds | null; genericPlans: boolean; connectTimeoutMs: number },
): Promise<OwnPool> {
  const bounds = options.session;
  const [{ Pool: PoolClass, Client: ClientClass }, { drizzle }] = await Promise.all([pgModule(), import('drizzle-orm/node-postgres')]);
  const config = connectionConfig(client);
  const sockets = new SocketTracker();
  // The bounds as node-postgres's own startup settings: they replace any the application's
  // config or connection string carries (which would otherwise win over `-c` options).
  const base = bounds ? resolvedConfig(ClientClass, config) : config;
  const settings = bounds
    ? {
        statement_timeout: bounds.statementTimeoutMs,
        lock_timeout: bounds.lockTimeoutMs,
        idle_in_transaction_session_timeout: bounds.idleInTransactionTimeoutMs,
        // node-postgres has no startup setting of its own for this one: a `-c` option, after the application's.
        options: [base.options, options.genericPlans ? '-c plan_cache_mode=force_generic_plan' : ''].filter(Boolean).join(' ') || undefined,
      }
    : {};
  const own = new PoolClass({
    ...base,
    ...settings,
    query_timeout: undefined,
    // One connection: a statement prepared on it stays prepared (a second connection would
    // re-prepare on first use, measured at +1-2 ms per handoff); one elector sends one at a time.
    max: 1,
    idleTimeoutMillis: 60_000,
    keepAlive: true,
    connectionTimeoutMillis: Math.min(config.connectionTimeoutMillis || Number.POSITIVE_INFINITY, options.connectTimeoutMs),
    stream: sockets.pgStream(),
  });
  // A connection the server ends (idle_in_transaction_session_timeout, a restart) emits 'error'
  // on its client; unheard while checked out, that would crash the process. The statement in
  // flight still fails with the error, and the pool replaces the connection.
  own.on('error', () => {});
  own.on('connect', (connection) => connection.on('error', () => {}));
  return {
    db: drizzle(own) as unknown as LeaderDatabase,
    reset: () => sockets.destroyAll(),
    close: async () => {
      // pool.end() waits for checked-out clients: a statement stuck on a dead socket never returns one.
      const timer = setTimeout(() => sockets.destroyAll(), 1_000);
      await own.end().catch(() => {});
      clearTimeout(timer);
      sockets.destroyAll();
    },
  };
}

/**
 * LISTEN for node-postgres through a dedicated `pg.Client` made from the pool's (or client's)
 * connection settings. A `Client` cannot be reused after an error, so every reconnect of the
 * shared notifier opens a new one.
 */
export function nodePostgresListenDriver(client: NodePostgresClient | string): ListenDriver {
  return {
    async open(events): Promise<ListenSession> {
      const { Client: ClientClass } = await pgModule();
      const config = typeof client === 'string' ? { connectionString: client } : connectionConfig(client);
      const sockets = new SocketTracker();
      const connection = new ClientClass({ ...config, keepAlive: true, stream: sockets.pgStream() });
      let closing = false;
      const dropped = (error?: unknown) => {
        if (closing) return;
        closing = true;
        events.closed(error ?? new Error('node-postgres LISTEN connection ended'));
        connection.end().catch(() => {});
        setTimeout(() => sockets.destroyAll(), 1_000).unref();
      };
      connection.on('notification', (message) => events.notification(message.channel, message.payload ?? ''));
      connection.on('error', dropped);
      connection.on('end', () => dropped());
      try {
        await connection.connect();
      } catch (error) {
        closing = true;
        await connection.end().catch(() => {});
        throw error;
      }
      return sqlListenSession(
        async (text) => void (await connection.query(text)),
        async () => {
          if (closing) return;
          closing = true;
          // A partitioned peer never acknowledges the close: do not let its socket hold the process.
          const timer = setTimeout(() => sockets.destroyAll(), 1_000);
          await connection.end().catch(() => {});
          clearTimeout(timer);
          sockets.destroyAll();
        },
      );
    },
  };
}

/**
 * Runs `fn` with raw statements on one session: the Client itself, or for a Pool a dedicated
 * Client made from its settings (a pool of one would deadlock if the lock holder were checked
 * out of it while the migrator waits for a connection).
 */
async function withOneConnection<T>(client: NodePostgresClient, fn: (run: (text: string) => Promise<void>) => Promise<T>): Promise<T> {
  if (!('totalCount' in client)) return fn(async (text) => void (await client.query(text)));
  const { Client: ClientClass } = await pgModule();
  const dedicated = new ClientClass(connectionConfig(client));
  dedicated.on('error', () => {});
  await dedicated.connect();
  try {
    return await fn(async (text) => void (await dedicated.query(text)));
  } finally {
    await dedicated.end();
  }
}

/**
 * A pool hands out a checked-out client without its idle 'error' listener, and a client whose
 * connection ends emits 'error' (even while a query runs): with nobody listening, the process
 * dies. Drizzle checks the client out and sends BEGIN before the transaction callback runs, so
 * the guard starts at checkout: every client acquired from the pool from `begin` until the
 * transaction's own client is known gets a listener; the others lose it again at once.
 */
type Emitter = {
  on(event: string, fn: (...args: unknown[]) => void): unknown;
  off(event: string, fn: (...args: unknown[]) => void): unknown;
};

const ignoreError = () => {};

/** Per pool (or bare client): how many guards wait for their checkout, and the clients given the listener. */
interface GuardState {
  pending: number;
  readonly guarded: Set<Emitter>;
}

const guardStates = new WeakMap<object, GuardState>();

/**
 * One 'acquire' and one 'release' listener per pool, however many transactions run at once:
 * while any guard waits for its checkout, every acquired client gets the listener, and every
 * guarded client loses it again when it goes back to the pool (whose own idle listener then
 * takes over). A client of the application checked out in that window is covered too, which
 * only spares it the same crash.
 */
function transactionGuard(client: NodePostgresClient): () => TransactionGuard {
  const isPool = 'totalCount' in client;
  const target = client as unknown as Emitter;
  let state = guardStates.get(client);
  if (!state) {
    const created: GuardState = { pending: 0, guarded: new Set() };
    if (isPool) {
      target.on('acquire', (acquired) => {
        const c = acquired as Emitter;
        if (created.pending === 0 || created.guarded.has(c)) return;
        c.on('error', ignoreError);
        created.guarded.add(c);
      });
      target.on('release', (_error, released) => {
        const c = released as Emitter;
        if (created.guarded.delete(c)) c.off('error', ignoreError);
      });
    }
    guardStates.set(client, created);
    state = created;
  }
  const shared = state;
  return () => {
    if (!isPool) {
      // A bare Client: the transaction runs on it; guard it for the transaction's life.
      if (shared.pending++ === 0) target.on('error', ignoreError);
      return {
        identified: () => {},
        end: () => {
          if (--shared.pending === 0) target.off('error', ignoreError);
        },
      };
    }
    shared.pending++;
    let waiting = true;
    const stopWaiting = () => {
      if (waiting) shared.pending--;
      waiting = false;
    };
    return { identified: stopWaiting, end: stopWaiting };
  };
}

/** What `checkOut` needs of Drizzle's node-postgres session to make one of its own over a checked-out client. */
type DrizzleSession = { dialect?: unknown; schema?: unknown; options?: unknown };

/**
 * A lease-checked transaction's client, checked out here rather than by Drizzle, so that it
 * always goes back to the pool (see DriverCapabilities.checkOut): the transaction runs on a
 * Drizzle session of the same kind as the application's (its dialect, schema, logger and
 * cache) over that one client, where Drizzle sends BEGIN ... COMMIT and gives nothing back.
 * A Drizzle whose session is not shaped as expected gets null: its own `db.transaction`.
 */
function checkOutFrom(pool: Pool): NonNullable<DriverCapabilities['checkOut']> {
  return async (db, deadlineMs) => {
    const session = (db as { session?: DrizzleSession }).session;
    const Session = session && (Object.getPrototypeOf(session)?.constructor as (new (...args: unknown[]) => object) | undefined);
    if (!session || typeof Session !== 'function' || !session.dialect) return null;
    const pending = pool.connect();
    let client: PoolClient;
    try {
      client = await withDeadline(
        pending,
        deadlineMs,
        () =>
          `no connection from the application's node-postgres pool within ${deadlineMs} ms (max ${pool.options.max ?? 10}, ${pool.waitingCount} waiting): the pool is exhausted or the server does not answer`,
      );
    } catch (error) {
      // Handed over after the deadline: straight back to the pool.
      pending.then(
        (late) => late.release(),
        () => {},
      );
      throw error;
    }
    const own = new Session(client, session.dialect, session.schema, session.options) as {
      transaction(fn: (tx: unknown) => Promise<unknown>, config: object | undefined): Promise<unknown>;
    };
    let released = false;
    let lost = false;
    const markLost = () => {
      lost = true;
    };
    // Also keeps a failure of its connection from being an unheard 'error' event while checked out.
    client.on('error', markLost);
    client.on('end', markLost);
    const checkedOut: CheckedOut = {
      get lost() {
        return lost;
      },
      transaction: (fn, config) => own.transaction(fn, config),
      release: (broken) => {
        if (released) return;
        released = true;
        client.off('error', markLost);
        client.off('end', markLost);
        client.release(broken ? new Error('drizzle-leader: the connection failed inside a lease-checked transaction') : undefined);
      },
    };
    return checkedOut;
  };
}

export function nodePostgresCapabilities(client: NodePostgresClient): DriverCapabilities {
  return {
    client,
    listen: nodePostgresListenDriver(client),
    transactions: true,
    guardTransaction: transactionGuard(client),
    checkOut: 'totalCount' in client ? checkOutFrom(client as Pool) : null,
    exclusiveTransactions: 'totalCount' in client,
    sessionEndSafe: true,
    connectionGone: null,
    session: (fn) => withOneConnection(client, fn),
    ownPool: (options) => openOwnPool(client, options),
  };
}
