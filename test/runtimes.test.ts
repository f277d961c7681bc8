/**
 * Bun and Deno (both devDependencies, installed by `npm ci`) run test/runtimes/smoke.ts (elect,
 * renew, NOTIFY handoff, stop; under Bun also drizzle-orm/bun-sql) and the CLI against the
 * same throwaway server as the rest of the suite. Deno runs the TypeScript sources with
 * --unstable-sloppy-imports: they import './x.js' meaning './x.ts', which Node (tsx) and Bun
 * resolve by themselves.
 */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createElector, type Elector, SILENT_LOGGER } from '../src/index.js';
import { type Connection, connect, createTestDatabase } from './support/db.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);

const RUNTIMES = [
  { name: 'bun', command: bin('bun'), args: [] as string[] },
  { name: 'deno', command: bin('deno'), args: ['run', '--allow-all', '--unstable-sloppy-imports'] },
] as const;

describe.each(RUNTIMES)('under $name', ({ name, command, args }) => {
  let url: string;
  let conn: Connection;
  const electors: Elector[] = [];
  beforeAll(async () => {
    url = await createTestDatabase();
    conn = connect('postgres.js', url);
  });
  afterAll(async () => {
    await Promise.all(electors.map((e) => e.stop()));
    await conn.close();
  });

  it('elects, renews, hands off through NOTIFY and stops (smoke.ts)', async () => {
    const { stdout } = await run(command, [...args, 'test/runtimes/smoke.ts', url], { cwd: root, timeout: 120_000 });
    expect(stdout).toMatch(/^(\d+) passed, 0 failed$/m);
    const passed = Number(/^(\d+) passed/m.exec(stdout)![1]);
    // Five checks through postgres.js; under Bun six more through bun-sql.
    expect(passed).toBe(name === 'bun' ? 11 : 5);
    expect(stdout).not.toMatch(/^FAIL/m);
  }, 150_000);

  it('runs the CLI: status lists the live election, resign --no-wait ends its term', async () => {
    const election = `cli-${name}`;
    const leader = createElector(conn.db, { name: election, id: 'node-leader', logger: SILENT_LOGGER });
    electors.push(leader);
    await leader.start();
    const term = leader.lease!.term;
    const cli = (...rest: string[]) => run(command, [...args, 'src/cli/main.ts', ...rest, '--url', url], { cwd: root, timeout: 60_000 });
    const status = JSON.parse((await cli('status', '--json')).stdout) as { name: string; leaderId: string; term: number }[];
    expect(status).toEqual([expect.objectContaining({ name: election, leaderId: 'node-leader', term })]);
    await cli('resign', election, '--no-wait');
    await expect.poll(() => leader.lease?.term ?? null, { timeout: 10_000 }).not.toBe(term);
  }, 90_000);
});
