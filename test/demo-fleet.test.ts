/**
 * `drizzle-leader demo --fleet` against the embedded server, as on a fresh machine: every step
 * passes and the summary shows what it narrates; Ctrl-C leaves no server and no directory behind.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, it, vi } from 'vitest';

const root = resolve(import.meta.dirname, '..');

/** The part of the fleet demo's `--json` summary this test reads. */
interface FleetDemoSummary {
  ok: boolean;
  server: string;
  names: number;
  steps: { step: string; ok: boolean }[];
  events: { kind: string; names: number; counts: number[] }[];
  nonIncreasingTerms: number;
}

it('the fleet demo passes every step: balanced start, a killed member replaced, a join and a drain rebalanced', {
  timeout: 180_000,
}, async () => {
  const { DATABASE_URL: _unset, ...env } = process.env;
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((done, fail) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'demo', '--fleet', '--json'],
      { cwd: root, env, timeout: 170_000 },
      (error, stdout, stderr) =>
        error ? fail(Object.assign(error, { message: `${error.message}\n${stderr}\n${stdout}` })) : done({ stdout, stderr }),
    ),
  );
  const summary = JSON.parse(stdout) as FleetDemoSummary;
  expect(summary.ok, stderr).toBe(true);
  expect(summary.server).toBe('embedded');
  expect(summary.names).toBe(60);
  expect(summary.events.map((e) => e.kind)).toEqual(['start', 'SIGKILL', 'join', 'drain']);
  // After each event every name is led and the live members differ by at most one name.
  for (const e of summary.events) {
    expect(
      e.counts.reduce((a, b) => a + b, 0),
      e.kind,
    ).toBe(60);
    expect(Math.max(...e.counts) - Math.min(...e.counts), e.kind).toBeLessThanOrEqual(1);
  }
  expect(summary.events.map((e) => e.counts.length)).toEqual([4, 3, 4, 3]);
  const [, killed, joined, drained] = summary.events;
  expect(killed!.names).toBeGreaterThan(0);
  expect(joined!.names).toBeGreaterThan(0);
  expect(drained!.names).toBeGreaterThan(0);
  expect(summary.nonIncreasingTerms).toBe(0);
  expect(summary.steps.every((s) => s.ok)).toBe(true);
  // Narration goes to stderr in --json mode, plain lines without a TTY.
  expect(stderr).toMatch(/ok {3}killed member replaced: its \d+ names led again/);
  expect(stderr).toMatch(/ok {3}drained member handed over/);
});

it('Ctrl-C during the fleet demo leaves nothing behind: no temporary directory, no server or member process', {
  timeout: 180_000,
}, async () => {
  const { DATABASE_URL: _unset, ...env } = process.env;
  const tmp = mkdtempSync(join(tmpdir(), 'demo-fleet-interrupt-'));
  chmodSync(tmp, 0o755); // as root, the embedded server runs as the postgres user, which must reach it
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'demo', '--fleet'], {
      cwd: root,
      env: { ...env, TMPDIR: tmp, CI: '1' },
      detached: true, // its own process group, as a terminal's Ctrl-C would reach
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
    await vi.waitFor(() => expect(out).toMatch(/ok {3}balanced start/), { timeout: 120_000, interval: 50 });
    const servers = () => readdirSync(tmp).filter((f) => f.startsWith('drizzle-leader-pg-'));
    expect(servers()).toHaveLength(1);
    const members = await new Promise<string>((done) => execFile('pgrep', ['-f', 'fleet-member'], (_e, stdout) => done(stdout.trim())));
    expect(members).not.toBe('');
    process.kill(-child.pid!, 'SIGINT');
    await exited;
    await vi.waitFor(() => expect(servers()).toEqual([]), { timeout: 10_000, interval: 100 });
    const leftovers = await new Promise<string>((done) => execFile('pgrep', ['-f', tmp], (_e, stdout) => done(stdout.trim())));
    expect(leftovers).toBe('');
    // The members are this demo's children: none outlives it.
    await vi.waitFor(
      async () => {
        const alive = await new Promise<string>((done) =>
          execFile('pgrep', ['-g', String(child.pid), '-f', 'fleet-member'], (_e, stdout) => done(stdout.trim())),
        );
        expect(alive).toBe('');
      },
      { timeout: 10_000, interval: 100 },
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
