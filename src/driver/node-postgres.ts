/** The node-postgres adapter: a dedicated LISTEN `Client` and a dedicated session, both made from the pool's or client's settings. */
import type { Client, ClientConfig, Pool } from 'pg';
import type { DriverCapabilities, ListenDriver, ListenSession } from './types.js';

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
      const pg = await import('pg');
      const ClientClass = (pg.default?.Client ?? (pg as unknown as { Client: typeof Client }).Client) as typeof Client;
      const connection = new ClientClass(typeof client === 'string' ? { connectionString: client } : connectionConfig(client));
      let closing = false;
      const dropped = (error?: unknown) => {
        if (closing) return;
        closing = true;
        events.closed(error ?? new Error('node-postgres LISTEN connection ended'));
        connection.end().catch(() => {});
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
      return {
        run: async (text) => void (await connection.query(text)),
        close: async () => {
          if (closing) return;
          closing = true;
          await connection.end();
        },
      };
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
  const pg = await import('pg');
  const ClientClass = (pg.default?.Client ?? (pg as unknown as { Client: typeof Client }).Client) as typeof Client;
  const dedicated = new ClientClass(connectionConfig(client));
  dedicated.on('error', () => {});
  await dedicated.connect();
  try {
    return await fn(async (text) => void (await dedicated.query(text)));
  } finally {
    await dedicated.end();
  }
}

export function nodePostgresCapabilities(client: NodePostgresClient): DriverCapabilities {
  return {
    client,
    listen: nodePostgresListenDriver(client),
    transactions: true,
    session: (fn) => withOneConnection(client, fn),
  };
}
