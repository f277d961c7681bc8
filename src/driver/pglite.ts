/**
 * The PGlite adapter (`drizzle-orm/pglite`): Postgres compiled to WebAssembly, in this process,
 * with exactly one session. There is nothing to open: LISTEN goes through PGlite's own
 * notification API on that session, election statements and migrations run on the instance
 * itself (no other client exists to hold it, and PGlite runs one query at a time).
 */
import { quoteIdentifier } from '../util/identifier.js';
import type { DriverCapabilities, ListenDriver, ListenSession, WithSession } from './types.js';

/** The part of a `PGlite` (or `PGliteWorker`) instance this adapter uses; typed here so the package stays optional. */
interface PGliteClient {
  readonly closed: boolean;
  exec(query: string): Promise<unknown>;
  listen(channel: string, callback: (payload: string) => void): Promise<unknown>;
  unlisten(channel: string, callback?: (payload: string) => void): Promise<void>;
  onNotification(callback: (channel: string, payload: string) => void): () => void;
}

/** True for a PGlite instance (what `drizzle-orm/pglite` keeps as `db.$client`). */
export function isPGliteClient(client: unknown): client is PGliteClient {
  const candidate = client as Partial<Record<keyof PGliteClient | 'transaction', unknown>> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.listen === 'function' &&
    typeof candidate.unlisten === 'function' &&
    typeof candidate.onNotification === 'function' &&
    typeof candidate.exec === 'function' &&
    typeof candidate.transaction === 'function' &&
    'closed' in candidate
  );
}

function closedError(): Error {
  return new Error('the PGlite instance is closed');
}

/**
 * LISTEN on the instance's one session. Delivery comes through `onNotification`, which carries
 * the channel as the server spelled it; LISTEN/UNLISTEN go through `pg.listen`/`pg.unlisten`
 * with a callback of our own, so PGlite counts our interest beside the application's own
 * listeners on the same channel and only UNLISTENs when the last one leaves (a bare UNLISTEN
 * would silence the application's `pg.listen` too). The channel is passed quoted: PGlite would
 * otherwise lowercase it.
 */
function pgliteListenDriver(pg: PGliteClient): ListenDriver {
  return {
    async open(events): Promise<ListenSession> {
      if (pg.closed) throw closedError();
      const ours = () => {};
      const listened = new Set<string>();
      const off = pg.onNotification((channel, payload) => events.notification(channel, payload));
      return {
        listen: async (channel) => {
          await pg.listen(quoteIdentifier(channel), ours);
          listened.add(channel);
        },
        unlisten: async (channel) => {
          listened.delete(channel);
          await pg.unlisten(quoteIdentifier(channel), ours);
        },
        // In-process: the session cannot drop or go silent, only the instance be closed. A
        // query here would wait behind an application transaction and be taken for a dead
        // connection.
        heartbeat: async () => {
          if (pg.closed) throw closedError();
        },
        close: async () => {
          off();
          if (pg.closed) return;
          for (const channel of listened) await pg.unlisten(quoteIdentifier(channel), ours).catch(() => {});
          listened.clear();
        },
      };
    },
  };
}

const exclusive = new WeakMap<object, Promise<unknown>>();

/**
 * `migrate()`'s session. Its advisory lock cannot exclude anything here: a session-level lock
 * is re-entrant for its own session, and the instance has only one, so two `migrate()` calls
 * on one instance would both take it. They are queued in this process instead, which is
 * complete: a PGlite instance is the only way into its data (two instances never share a
 * database, and one data directory is opened by one instance at a time).
 */
function pgliteSession(pg: PGliteClient): WithSession {
  return (fn) => {
    const before = exclusive.get(pg) ?? Promise.resolve();
    const mine = before.then(() => fn(async (text) => void (await pg.exec(text))));
    exclusive.set(
      pg,
      mine.catch(() => {}),
    );
    return mine;
  };
}

export function pgliteCapabilities(pg: PGliteClient): DriverCapabilities {
  return {
    client: pg,
    listen: pgliteListenDriver(pg),
    transactions: true,
    guardTransaction: null,
    checkOut: null,
    exclusiveTransactions: true,
    // One in-process session: nothing to end from outside, and the server ignores the timeouts
    // anyway. A lease-checked transaction holds up the elector's own statements meanwhile.
    sessionEndSafe: false,
    connectionGone: null,
    session: pgliteSession(pg),
    // No pool to open: statements go through `db`, i.e. this very instance.
    ownPool: null,
  };
}
