/**
 * Statements built once per database object and table, with placeholders, and prepared: with
 * Drizzle, building a query costs more than its round trip on loopback (1.9 ms against 0.24
 * for the single election), and far more in a process whose builder code is cold because it
 * runs rarely (a group's batched election ran 10 ms of query building during a drain, traced).
 * Values travel as parameters only, so one text serves every call.
 */
import { createHash } from 'node:crypto';
import type { LeaderTable } from '../schema.js';
import type { LeaderDatabase } from '../types.js';

interface Preparable {
  toSQL(): { sql: string };
  prepare(name: string): unknown;
}

/** A prepared statement's name must be unique per connection and text (node-postgres checks): derive it from both. */
function prepareNamed<T extends Preparable>(kind: string, query: T): ReturnType<T['prepare']> {
  const digest = createHash('sha1').update(query.toSQL().sql).digest('hex').slice(0, 12);
  return query.prepare(`drizzle_leader_${kind}_${digest}`) as ReturnType<T['prepare']>;
}

const cache = new WeakMap<LeaderDatabase, WeakMap<LeaderTable, Map<string, unknown>>>();

/** The statement `kind` of this database object and table, built and prepared on first use. */
export function preparedOnce<T extends Preparable>(
  db: LeaderDatabase,
  table: LeaderTable,
  kind: string,
  build: (db: LeaderDatabase, table: LeaderTable) => T,
): ReturnType<T['prepare']> {
  let byTable = cache.get(db);
  if (!byTable) {
    byTable = new WeakMap();
    cache.set(db, byTable);
  }
  let byKind = byTable.get(table);
  if (!byKind) {
    byKind = new Map();
    byTable.set(table, byKind);
  }
  let statement = byKind.get(kind) as ReturnType<T['prepare']> | undefined;
  if (!statement) {
    statement = prepareNamed(kind, build(db, table));
    byKind.set(kind, statement);
  }
  return statement;
}
