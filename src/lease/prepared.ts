/**
 * Statements built once per database object and table, with placeholders, and prepared: with
 * Drizzle, building a query costs more than its round trip on loopback (1.9 ms against 0.24
 * for the single election), and far more in a process whose builder code is cold because it
 * runs rarely (a group's batched election ran 10 ms of query building during a drain, traced).
 * Values travel as parameters only, so one text serves every call.
 *
 * Named, so the server plans each once per connection. Behind a transaction-mode pooler
 * without prepared-statement support (PgBouncer before 1.21, or `max_prepared_statements = 0`)
 * consecutive statements of one client connection land on different server connections, and a
 * named statement is refused: 42P05 (already exists) at its Parse or 26000 (does not exist) at
 * its Bind, in both cases before it ran. The first such refusal switches that database object
 * to unnamed statements for good, and the statement is sent again, unnamed, at once: still
 * built once, parsed and planned by the server at each call.
 */
import { createHash } from 'node:crypto';
import type { LeaderTable } from '../schema.js';
import type { LeaderDatabase } from '../types.js';
import { errorCode } from '../util/cause.js';

interface Preparable {
  toSQL(): { sql: string };
  prepare(name: string): { execute(values?: Record<string, unknown>): Promise<unknown> };
}

/** What callers get: the prepared statement's own `execute`, typed as Drizzle types it. */
type Prepared<T extends Preparable> = Pick<ReturnType<T['prepare']>, 'execute'>;

/** A pooler's refusal of a named statement: raised at Parse (42P05) or Bind (26000), so the statement never ran. */
const NAMED_STATEMENT_REFUSED = new Set(['42P05', '26000']);

/** Database objects whose named statements a pooler refused: they send unnamed ones from then on. */
const unnamedOnly = new WeakSet<LeaderDatabase>();

interface Entry {
  named: { execute(values?: Record<string, unknown>): Promise<unknown> };
  unnamed: { execute(values?: Record<string, unknown>): Promise<unknown> } | null;
  query: Preparable;
}

const cache = new WeakMap<LeaderDatabase, WeakMap<LeaderTable, Map<string, Prepared<Preparable>>>>();

/** A prepared statement's name must be unique per connection and text (node-postgres checks): derive it from both. */
function statementName(kind: string, query: Preparable): string {
  const digest = createHash('sha1').update(query.toSQL().sql).digest('hex').slice(0, 12);
  return `drizzle_leader_${kind}_${digest}`;
}

function executor(db: LeaderDatabase, entry: Entry): Prepared<Preparable> {
  const unnamed = () => {
    // Drizzle sends a prepared query without a name as an unnamed statement (node-postgres), or unprepared (postgres.js).
    entry.unnamed ??= entry.query.prepare(undefined as unknown as string);
    return entry.unnamed;
  };
  return {
    async execute(values) {
      if (unnamedOnly.has(db)) return unnamed().execute(values);
      try {
        return await entry.named.execute(values);
      } catch (error) {
        const code = errorCode(error);
        if (code === undefined || !NAMED_STATEMENT_REFUSED.has(code)) throw error;
        unnamedOnly.add(db);
        return unnamed().execute(values);
      }
    },
  };
}

/** The statement `kind` of this database object and table, built and prepared on first use. */
export function preparedOnce<T extends Preparable>(
  db: LeaderDatabase,
  table: LeaderTable,
  kind: string,
  build: (db: LeaderDatabase, table: LeaderTable) => T,
): Prepared<T> {
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
  let statement = byKind.get(kind);
  if (!statement) {
    const query = build(db, table);
    statement = executor(db, { query, named: query.prepare(statementName(kind, query)), unnamed: null });
    byKind.set(kind, statement);
  }
  return statement as Prepared<T>;
}
