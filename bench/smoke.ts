/**
 * Keeps the benchmark code working: a smoke run (a few iterations of every scenario) must
 * complete and write valid JSON with every scenario present. No timing is judged here; numbers
 * come from `npm run bench` (bench/README.md). `.ci/run` runs it after `npm test`: at about two
 * minutes on two cores it is a check of the benchmark, not of the library, and was the largest
 * part of the test suite's time.
 *
 * `npm run bench:smoke`
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'drizzle-leader-bench-'));
try {
  const out = join(dir, 'smoke.json');
  const { DATABASE_URL: _own, ...env } = process.env;
  execFileSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--out', out], {
    cwd: root,
    env,
    stdio: 'inherit',
    timeout: 600_000,
  });
  const results = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(results.mode, 'smoke');
  assert.deepEqual(
    Object.keys(results.scenarios).sort(),
    ['advisoryLock', 'crash', 'floor', 'graceful', 'herd', 'inProcess', 'leaseChecked', 'ratios', 'scale', 'scripted', 'steady'].sort(),
  );
  // The library's statements scripted, and each LISTEN row's floor paced like its handoffs.
  assert.equal(results.scenarios.scripted.statements.n, 3);
  assert.equal(results.scenarios.scripted.pacedFloor.n, 3);
  for (const g of results.scenarios.graceful.filter((x: { mode: string }) => x.mode === 'listen')) {
    assert.equal(g.pacedFloor.n, 3);
    assert.equal(typeof g.overPacedFloor.p50, 'number');
  }
  // The fleet has its own section beside the scenarios.
  assert.equal(typeof results.fleet, 'object');
  assert.deepEqual(
    results.scenarios.graceful.map((g: { mode: string; candidates: number }) => `${g.mode}-${g.candidates}`),
    ['listen-2', 'listen-10', 'listen-50', 'poll-10'],
  );
  assert.equal(results.scenarios.inProcess.pglite.n, 3);
  assert.equal(results.scenarios.inProcess.postgresJs.n, 3);
  assert.equal(typeof results.machine.cores, 'number');
  assert.equal(results.machine.node, process.version);
  assert.equal(typeof results.machine.postgres, 'string');
  // A smoke run's steady-state window is shorter than three leases: its per-lease rates are
  // reported but not judged, so two of the nine targets are left out.
  const targets = results.targets.map((t: { target: string }) => t.target);
  assert.ok(!targets.includes('leader statements per renew interval (5 s)'));
  assert.ok(targets.length >= 7, `${targets.length} targets`);
  assert.ok(results.scenarios.steady.windowSeconds > 0);
  assert.match(readFileSync(join(dir, 'smoke.svg'), 'utf8'), /^<svg/);
  console.log('bench smoke: every scenario ran and wrote its results');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
