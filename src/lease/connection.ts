/**
 * Where the elector's statements run: on a small pool the library owns, made from the
 * application client's settings, never on the application's own connections (safety rule 6).
 * A bare node-postgres `Client` or a postgres.js reserved connection is one connection the
 * application can hold inside a transaction: election statements sent there would run inside
 * it, commit it, or wait behind it. The own pool also carries server-side bounds as session
 * settings, so every statement is bounded without an extra round trip.
 *
 * Two pools per driver client and set of bounds, one connection each, shared by
 * every elector of the process that uses them and closed when the last one stops: one for
 * elections, one for the leaders' renewals and resignations. Elections waiting behind a row
 * lock (an operator holding one name) can then fill only the first, never delay a renewal of
 * another name. An elector group elects on a connection of its own (`unshared`): its batch
 * elections can each wait out the lock timeout on a row another session is inserting, and
 * another group's (or elector's) elections would queue behind every such wait.
 */
import { sql } from 'drizzle-orm';
import { diagnose } from '../diagnose.js';
import { detectDriver } from '../driver/detect.js';
import type { OwnPool, SessionBounds } from '../driver/types.js';
import type { LeaderDatabase, Logger } from '../types.js';
import { errorCode } from '../util/cause.js';
import { withDeadline } from '../util/deadline.js';

interface Shared {
  readonly pool: Promise<{ pool: OwnPool; error: unknown }>;
  refs: number;
  /** Whether an elector was already told how the first connection went. */
  told: boolean;
}

const pools = new WeakMap<object, Map<string, Shared>>();

/**
 * PgBouncer (and other poolers) refuse startup parameters they do not know, with 08P01. Not
 * every 08P01 is that: a pool with no free server connection for now (query_wait_timeout) is
 * retried with the bounds, and a login or database error passed on is the caller's to report.
 */
function refusedStartupParameters(error: unknown): boolean {
  if (/unsupported startup parameter/i.test(String((error as Error)?.message ?? error))) return true;
  return errorCode(error) === '08P01' && diagnose(error)?.kind === 'not-postgres';
}

/** Connection attempts give up after the trust window, and never wait longer than this. */
export const MAX_CONNECT_TIMEOUT_MS = 10_000;

/** PostgreSQL before 12 has no `plan_cache_mode`, and refuses a connection that sets it. */
function unknownSetting(error: unknown): boolean {
  return errorCode(error) === '42704';
}

/**
 * Opens the pool and tries one connection. Its sessions carry the bounds and run every
 * statement on a generic plan: the server plans each prepared statement once, at its first
 * run on the connection, instead of at each of its first five (PostgreSQL's default tries
 * custom plans first). A handoff runs a resignation and an election on connections that have
 * run each only a few times, so it paid for planning at both ends: traced, 2-candidate
 * handoffs went from 2.8-3.1 ms to 2.0-2.1 ms p50 (n = 80 each, runs alternated), the
 * election's round trip from 0.77 to 0.43-0.51 ms. The statements on these connections look
 * rows up by name (the primary key), one or a JSON list of them, where a custom plan knows no
 * more than a generic one.
 *
 * A server that refuses the setting (before PostgreSQL 12, or a pooler that lets only the
 * bounds through) gets the bounds without it; a pooler that refuses those too gets a pool
 * without any. Any other failure (wrong password, server down) is returned for the elector to
 * report as its first attempt, instead of waiting for the same failure twice.
 */
async function open(db: LeaderDatabase, bounds: SessionBounds, logger: Logger): Promise<{ pool: OwnPool; error: unknown }> {
  const ownPool = detectDriver(db).ownPool!;
  const connectTimeoutMs = Math.min(MAX_CONNECT_TIMEOUT_MS, bounds.statementTimeoutMs);
  const tryOpen = async (session: SessionBounds, genericPlans: boolean) => {
    const pool = await ownPool({ session, genericPlans, connectTimeoutMs });
    try {
      // Bounded here too: a driver may retry a connection that something not PostgreSQL keeps closing.
      await withDeadline(pool.db.execute(sql`select 1`), connectTimeoutMs + bounds.statementTimeoutMs, () => {
        return `no answer from the database within ${connectTimeoutMs + bounds.statementTimeoutMs} ms (is the URL's host and port a PostgreSQL server?)`;
      });
      return { pool, error: null };
    } catch (error) {
      return { pool, error };
    }
  };
  let opened = await tryOpen(bounds, true);
  if (unknownSetting(opened.error) || refusedStartupParameters(opened.error)) {
    // A pooler that lets the bounds through (ignore_startup_parameters) may still refuse this one.
    await opened.pool.close().catch(() => {});
    opened = await tryOpen(bounds, false);
  }
  if (!refusedStartupParameters(opened.error)) return opened;
  await opened.pool.close().catch(() => {});
  logger.warn(
    { err: opened.error },
    'drizzle-leader: the server (a pooler?) refused session settings at connect; elections run without server-side ' +
      'timeouts (client-side bounds still apply). Connect the elector directly or through a session-mode pooler to restore them.',
  );
  return { pool: await ownPool({ session: null, genericPlans: false, connectTimeoutMs }), error: null };
}

/**
 * The database the elector's statements go through: its own pool when the driver allows one,
 * else `db` itself: HTTP drivers (every statement is its own transaction on a connection
 * nobody holds) and PGlite (one in-process session; an application transaction open on it
 * makes statements wait, never run inside it, because PGlite runs one query at a time). `release()` closes the pool when the last user lets go. `error`: the first
 * connection of a new pool failed (the pool is still usable: it reconnects).
 */
export async function acquireStatementDatabase(
  db: LeaderDatabase,
  bounds: SessionBounds,
  logger: Logger,
  role: 'elect' | 'lead',
  options: { readonly unshared?: boolean } = {},
): Promise<{ db: LeaderDatabase; reset(): void; release(): Promise<void>; error: unknown }> {
  const { client, ownPool } = detectDriver(db);
  if (!client || !ownPool) return { db, reset: () => {}, release: async () => {}, error: null };
  let byBounds = pools.get(client);
  if (!byBounds) {
    byBounds = new Map();
    pools.set(client, byBounds);
  }
  const key = `${role}:${bounds.statementTimeoutMs}:${bounds.lockTimeoutMs}:${bounds.idleInTransactionTimeoutMs}`;
  // An unshared pool is never entered in the map: nobody else can find it, and its one user closes it.
  let shared = options.unshared ? undefined : byBounds.get(key);
  if (!shared) {
    shared = { pool: open(db, bounds, logger), refs: 0, told: false };
    if (!options.unshared) byBounds.set(key, shared);
  }
  shared.refs++;
  const held = shared;
  const tell = !held.told;
  held.told = true;
  const { pool, error } = await held.pool;
  let released = false;
  return {
    db: pool.db,
    reset: () => pool.reset(),
    // Only the elector that opened the pool hears how its first connection went.
    error: tell ? error : null,
    release: async () => {
      if (released) return;
      released = true;
      if (--held.refs > 0) return;
      if (byBounds.get(key) === held) byBounds.delete(key);
      await pool.close();
    },
  };
}
