/**
 * PGlite connections for the tests: a fresh in-memory instance each (PGlite has no server to
 * share, so a "database" is an instance), migrated with migrate() unless told otherwise.
 */
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { type LeaderDatabase, migrate } from '../../src/index.js';
import type { Connection } from './db.js';

export interface PGliteConnection extends Connection {
  readonly pg: PGlite;
}

export async function pgliteConnection(options: { migrated?: boolean } = {}): Promise<PGliteConnection> {
  const pg = await PGlite.create();
  const db = drizzle(pg) as unknown as LeaderDatabase;
  if (options.migrated !== false) await migrate(db);
  return {
    pg,
    db,
    query: async (text, params = []) => (await pg.query(text, params)).rows as never,
    // Tests close the same instance as "conn" and as "admin".
    close: async () => {
      if (!pg.closed) await pg.close();
    },
  };
}
