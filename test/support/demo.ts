/**
 * The CLI's demos run from the sources as a user runs them: to the end (with `--json`, say), or
 * from a terminal that then sends Ctrl-C.
 */
import { type ChildProcessByStdio, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';

const root = resolve(import.meta.dirname, '../..');
const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

/** This process's environment without DATABASE_URL, so the demo starts a throwaway server of its own. */
export function withoutDatabaseUrl(): NodeJS.ProcessEnv {
  const { DATABASE_URL: _unset, ...env } = process.env;
  return env;
}

/** Runs `drizzle-leader <args>` to its end; a non-zero exit fails with its output in the message. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeout: number }): Promise<{ stdout: string; stderr: string }> {
  return new Promise((done, fail) =>
    execFile(process.execPath, [...CLI, ...args], { cwd: root, env: options.env, timeout: options.timeout }, (error, stdout, stderr) =>
      error ? fail(Object.assign(error, { message: `${error.message}\n${stderr}\n${stdout}` })) : done({ stdout, stderr }),
    ),
  );
}

/** What `pgrep <args>` prints, trimmed: '' when no process matches. */
export function pgrep(args: string[]): Promise<string> {
  return new Promise((done) => execFile('pgrep', args, (_e, stdout) => done(stdout.trim())));
}

export interface InterruptibleDemo {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  /** The demo's own temporary directory (its TMPDIR). */
  readonly tmp: string;
  /** Its output so far, stdout and stderr together. */
  output(): string;
  /** The embedded servers' directories in `tmp` (tsx keeps a cache there too). */
  servers(): string[];
  /** Ctrl-C, as a terminal sends it to the demo's process group; resolves once the demo has exited. */
  interrupt(): Promise<void>;
}

/**
 * Starts `drizzle-leader <args>` without a URL and without a TTY (plain lines), in a temporary
 * directory of its own (so nothing else's files are counted) and a process group of its own (as a
 * terminal's Ctrl-C would reach), hands it to `body`, and removes the directory afterwards.
 */
export async function withInterruptibleDemo(
  args: string[],
  tmpPrefix: string,
  body: (demo: InterruptibleDemo) => Promise<void>,
  /** What to run instead of the CLI with `args`: `npm start` as a user types it (npm, then node, one process group). */
  command: { file: string; args: string[] } = { file: process.execPath, args: [...CLI, ...args] },
): Promise<void> {
  const env = withoutDatabaseUrl();
  const tmp = mkdtempSync(join(tmpdir(), tmpPrefix));
  chmodSync(tmp, 0o755); // as root, the embedded server runs as the postgres user, which must reach it
  try {
    const child = spawn(command.file, command.args, {
      cwd: root,
      env: { ...env, TMPDIR: tmp, CI: '1' },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      out += chunk;
    });
    const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
    await body({
      child,
      tmp,
      output: () => out,
      servers: () => readdirSync(tmp).filter((f) => f.startsWith('drizzle-leader-pg-')),
      interrupt: async () => {
        process.kill(-child.pid!, 'SIGINT');
        await exited;
      },
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
