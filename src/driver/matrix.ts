/**
 * What drizzle-leader does with each Drizzle PostgreSQL driver, in one table: `detect.ts` picks
 * the adapter from it, and the README's driver matrix is generated from it
 * (`npm run docs:matrix`; test/docs.test.ts fails when the README drifts). Data only: this
 * file imports nothing.
 */

/** Which thin adapter serves a driver; null: none, statements go through `db`, poll-only, no migrate(). */
export type AdapterName = 'postgres-js' | 'node-postgres' | 'pglite' | 'bun-sql';

export interface DriverRow {
  /** The module a Drizzle user imports. */
  readonly module: string;
  /** Drizzle's `entityKind` of the database object the module's `drizzle()` returns; null when the module is no driver. */
  readonly entityKind: string | null;
  readonly adapter: AdapterName | null;
  readonly statements: string;
  /** Interactive transactions (BEGIN ... COMMIT on one connection). */
  readonly transactions: string;
  readonly listen: string;
  readonly migrate: string;
  /** How this repository tests it, in words. */
  readonly tested: string;
  /** Test files that exercise it, each with a string the file must contain (the docs test checks both). */
  readonly evidence: readonly { readonly file: string; readonly mentions: string }[];
}

const HTTP_STATEMENTS = 'through `db`, one HTTP request each; client-side deadlines only';
const POLL_ONLY = 'no: poll-only with one warning line, or `listen: { url }` on a direct connection';
const NO_MIGRATE = 'refused (`UnsupportedDriverError`): use your drizzle-kit flow';
const HOSTED = 'not testable here: poll-only by design (a hosted service)';

export const DRIVER_MATRIX: readonly DriverRow[] = [
  {
    module: 'drizzle-orm/postgres-js',
    entityKind: 'PostgresJsDatabase',
    adapter: 'postgres-js',
    statements: "own connections from the client's options, with server-side timeouts",
    transactions: 'yes',
    listen: 'yes: a dedicated connection',
    migrate: 'yes: advisory lock on a dedicated connection',
    tested: 'real PostgreSQL: the whole suite; a subset under Bun and Deno',
    evidence: [
      { file: 'test/elector.test.ts', mentions: 'CORE_DRIVERS' },
      { file: 'test/support/db.ts', mentions: 'drizzle-orm/postgres-js' },
      { file: 'test/runtimes/smoke.ts', mentions: 'drizzle-orm/postgres-js' },
    ],
  },
  {
    module: 'drizzle-orm/node-postgres',
    entityKind: 'NodePgDatabase',
    adapter: 'node-postgres',
    statements: "own connections from the pool's or client's settings, with server-side timeouts",
    transactions: 'yes',
    listen: 'yes: a dedicated `pg.Client`',
    migrate: 'yes: advisory lock on a dedicated connection',
    tested: 'real PostgreSQL: the whole suite',
    evidence: [
      { file: 'test/elector.test.ts', mentions: 'CORE_DRIVERS' },
      { file: 'test/support/db.ts', mentions: 'drizzle-orm/node-postgres' },
    ],
  },
  {
    module: 'drizzle-orm/pglite',
    entityKind: 'PgliteDatabase',
    adapter: 'pglite',
    statements: 'on the instance itself (its one session; queued behind an open transaction); client-side deadlines only',
    transactions: 'yes',
    listen: "yes: PGlite's own `listen`/`onNotification`",
    migrate: 'yes: calls on one instance are queued',
    tested: 'real PGlite: the core elector suite and its own tests',
    evidence: [
      { file: 'test/elector.test.ts', mentions: 'pgliteConnection' },
      { file: 'test/support/pglite.ts', mentions: 'drizzle-orm/pglite' },
      { file: 'test/pglite.test.ts', mentions: 'migrate(' },
    ],
  },
  {
    module: 'drizzle-orm/bun-sql',
    entityKind: 'BunSQLDatabase',
    adapter: 'bun-sql',
    statements: "through `db` (Bun's own pool); client-side deadlines only",
    transactions: 'yes',
    listen: "yes: a dedicated postgres.js (else pg) connection from the client's settings",
    migrate: 'yes: advisory lock on a dedicated Bun connection',
    tested: 'real PostgreSQL under Bun',
    evidence: [{ file: 'test/runtimes/smoke.ts', mentions: 'drizzle-orm/bun-sql' }],
  },
  {
    module: 'drizzle-orm/pg-proxy',
    entityKind: 'PgRemoteDatabase',
    adapter: null,
    statements: 'through `db` (your callback, one request each); client-side deadlines only',
    transactions: 'no (the driver refuses)',
    listen: POLL_ONLY,
    migrate: NO_MIGRATE,
    tested: 'real PostgreSQL behind a local HTTP proxy the test runs',
    evidence: [{ file: 'test/drivers.test.ts', mentions: 'drizzle-orm/pg-proxy' }],
  },
  {
    module: 'drizzle-orm/neon-http',
    entityKind: 'NeonHttpDatabase',
    adapter: null,
    statements: HTTP_STATEMENTS,
    transactions: 'no (the driver refuses)',
    listen: POLL_ONLY,
    migrate: NO_MIGRATE,
    tested: HOSTED,
    evidence: [],
  },
  {
    module: 'drizzle-orm/neon-serverless',
    entityKind: 'NeonServerlessDatabase',
    adapter: null,
    statements: "through `db` (Neon's WebSocket pool); client-side deadlines only",
    transactions: 'yes',
    listen: POLL_ONLY,
    migrate: NO_MIGRATE,
    tested: HOSTED,
    evidence: [],
  },
  {
    module: 'drizzle-orm/vercel-postgres',
    entityKind: 'VercelPgDatabase',
    adapter: null,
    statements: "through `db` (Vercel's WebSocket pool); client-side deadlines only",
    transactions: 'yes',
    listen: POLL_ONLY,
    migrate: NO_MIGRATE,
    tested: HOSTED,
    evidence: [],
  },
  {
    module: 'drizzle-orm/aws-data-api/pg',
    entityKind: 'AwsDataApiPgDatabase',
    adapter: null,
    statements: HTTP_STATEMENTS,
    transactions: 'yes (Data API transactions)',
    listen: POLL_ONLY,
    migrate: NO_MIGRATE,
    tested: HOSTED,
    evidence: [],
  },
  {
    module: 'drizzle-orm/xata-http',
    entityKind: 'XataHttpDatabase',
    adapter: null,
    statements: HTTP_STATEMENTS,
    transactions: 'no (the driver refuses)',
    listen: POLL_ONLY,
    migrate: NO_MIGRATE,
    tested: HOSTED,
    evidence: [],
  },
  {
    module: 'drizzle-orm/netlify-db',
    entityKind: 'NetlifyDbDatabase',
    adapter: null,
    statements: "through `db` (Neon HTTP; in Netlify's server mode it returns a node-postgres database: see that row)",
    transactions: "yes (Neon's WebSocket pool)",
    listen: POLL_ONLY,
    migrate: NO_MIGRATE,
    tested: HOSTED,
    evidence: [],
  },
  {
    module: 'drizzle-orm/prisma/pg',
    entityKind: 'PrismaPgDatabase',
    adapter: null,
    statements: "through `db` (Prisma's `$queryRawUnsafe`); client-side deadlines only",
    transactions: 'no (not implemented by the driver)',
    listen: POLL_ONLY,
    migrate: NO_MIGRATE,
    tested: 'not testable here: needs a generated Prisma client',
    evidence: [],
  },
  {
    module: 'drizzle-orm/supabase',
    entityKind: null,
    adapter: null,
    statements: 'not a driver: RLS roles and `authUsers` only; Supabase apps connect with postgres-js (see that row)',
    transactions: '-',
    listen: '-',
    migrate: '-',
    tested: 'as postgres-js',
    evidence: [],
  },
];

/** The row for a database object's Drizzle `entityKind`, if it is one of the table's. */
export function driverRow(entityKind: string | undefined): DriverRow | undefined {
  return entityKind === undefined ? undefined : DRIVER_MATRIX.find((row) => row.entityKind === entityKind);
}

/** The README's matrix, as Markdown. */
export function renderDriverMatrix(): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const lines = [
    '| driver | statements | transactions | LISTEN | `migrate()` | tested here |',
    '| --- | --- | --- | --- | --- | --- |',
    ...DRIVER_MATRIX.map(
      (row) => `| \`${row.module}\` | ${[row.statements, row.transactions, row.listen, row.migrate, row.tested].map(cell).join(' | ')} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
