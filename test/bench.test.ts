/**
 * Keeps the benchmark code working: a smoke run (a few iterations of every scenario) must
 * complete and write valid JSON with every scenario present. No timing is asserted here;
 * numbers come from `npm run bench` (bench/README.md).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');

it('npm run bench -- --quick --smoke completes and writes every scenario', { timeout: 420_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'drizzle-leader-bench-'));
  try {
    const out = join(dir, 'smoke.json');
    const { DATABASE_URL: _own, ...env } = process.env;
    await new Promise<void>((done, fail) =>
      execFile(
        'npm',
        ['run', 'bench', '--', '--quick', '--smoke', '--out', out],
        { cwd: root, env, timeout: 400_000 },
        (error, _stdout, stderr) => (error ? fail(Object.assign(error, { message: `${error.message}\n${stderr}` })) : done()),
      ),
    );
    const results = JSON.parse(readFileSync(out, 'utf8'));
    expect(results.mode).toBe('smoke');
    expect(Object.keys(results.scenarios).sort()).toEqual(
      ['advisoryLock', 'crash', 'floor', 'graceful', 'herd', 'inProcess', 'leaseChecked', 'ratios', 'scale', 'steady'].sort(),
    );
    // The fleet has its own section beside the scenarios.
    expect(results.fleet).toBeTypeOf('object');
    expect(results.scenarios.graceful.map((g: { mode: string; candidates: number }) => `${g.mode}-${g.candidates}`)).toEqual([
      'listen-2',
      'listen-10',
      'listen-50',
      'poll-10',
    ]);
    expect(results.scenarios.inProcess.pglite.n).toBe(3);
    expect(results.scenarios.inProcess.postgresJs.n).toBe(3);
    expect(results.machine).toMatchObject({ cores: expect.any(Number), node: process.version, postgres: expect.any(String) });
    // A smoke run's steady-state window is shorter than three leases: its per-lease rates are
    // reported but not judged, so two of the nine targets are left out.
    expect(results.targets.map((t: { target: string }) => t.target)).not.toContain('leader statements per renew interval (5 s)');
    expect(results.targets.length).toBeGreaterThanOrEqual(7);
    expect(results.scenarios.steady.windowSeconds).toBeGreaterThan(0);
    expect(readFileSync(join(dir, 'smoke.svg'), 'utf8')).toMatch(/^<svg/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
