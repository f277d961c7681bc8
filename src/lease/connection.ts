/**
 * Where the elector's statements run: on a small pool the library owns, made from the
 * application client's settings, never on the application's own connections (safety rule 6).
 * A bare node-postgres `Client` or a postgres.js reserved connection is one connection the
 * application can hold inside a transaction: election statements sent there would run inside
 * it, commit it, or wait behind it. The own pool also carries server-side bounds as session
 * settings, so every statement is bounded without an extra round trip.
 *
 * One pool per driver client and set of bounds, shared by every elector of the process that
 * uses them, closed when the last one stops.
 */
import { sql } from 'drizzle-orm';
import { detectDriver } from '../driver/detect.js';
import type { OwnPool, SessionBounds } from '../driver/types.js';
import type { LeaderDatabase, Logger } from '../types.js';
import { errorCode } from '../util/cause.js';

interface Shared {
  readonly pool: Promise<OwnPool>;
  refs: number;
}

const pools = new WeakMap<object, Map<string, Shared>>();

/** PgBouncer (and other poolers) refuse startup parameters they do not know. */
function refusedStartupParameters(error: unknown): boolean {
  return errorCode(error) === '08P01' || /unsupported startup parameter/i.test(String((error as Error)?.message ?? error));
}

async function open(db: LeaderDatabase, bounds: SessionBounds, logger: Logger): Promise<OwnPool> {
  const ownPool = detectDriver(db).ownPool!;
  const pool = await ownPool(bounds);
  try {
    await pool.db.execute(sql`select 1`);
    return pool;
  } catch (error) {
    if (!refusedStartupParameters(error)) return pool; // server down or similar: the elector reports it on its first election
    await pool.close().catch(() => {});
    logger.warn(
      { err: error },
      'drizzle-leader: the server (a pooler?) refused session settings at connect; elections run without server-side ' +
        'timeouts (client-side bounds still apply). Connect the elector directly or through a session-mode pooler to restore them.',
    );
    return ownPool(null);
  }
}

/**
 * The database the elector's statements go through: its own pool when the driver allows one,
 * else `db` itself (HTTP drivers: every statement is its own transaction on a connection
 * nobody holds). `release()` closes the pool when the last user lets go.
 */
export async function acquireStatementDatabase(
  db: LeaderDatabase,
  bounds: SessionBounds,
  logger: Logger,
): Promise<{ db: LeaderDatabase; release(): Promise<void> }> {
  const { client, ownPool } = detectDriver(db);
  if (!client || !ownPool) return { db, release: async () => {} };
  let byBounds = pools.get(client);
  if (!byBounds) {
    byBounds = new Map();
    pools.set(client, byBounds);
  }
  const key = `${bounds.statementTimeoutMs}:${bounds.lockTimeoutMs}:${bounds.idleInTransactionTimeoutMs}`;
  let shared = byBounds.get(key);
  if (!shared) {
    shared = { pool: open(db, bounds, logger), refs: 0 };
    byBounds.set(key, shared);
  }
  shared.refs++;
  const held = shared;
  const pool = await held.pool;
  let released = false;
  return {
    db: pool.db,
    release: async () => {
      if (released) return;
      released = true;
      if (--held.refs > 0) return;
      if (byBounds.get(key) === held) byBounds.delete(key);
      await pool.close();
    },
  };
}
