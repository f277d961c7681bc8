/**
 * `npm start` (the demo) in CI, against the embedded server as on a fresh machine: it must pass
 * every step, and its JSON summary must show the safety properties it narrates.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');

/** The part of the demo's `--json` summary this test reads. */
interface DemoSummary {
  ok: boolean;
  server: string;
  handoffs: { kind: string }[];
  terms: number[];
  staleTermActionsAccepted: number;
  frozenLeaderActionsAfterResume: number;
  actionsPerTerm: unknown[];
  durationMs: number;
}

it('the failover demo passes every step: handoffs, increasing terms, no stale-term action', { timeout: 120_000 }, async () => {
  const { DATABASE_URL: _unset, ...env } = process.env;
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((done, fail) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'demo', '--json'],
      { cwd: root, env, timeout: 90_000 },
      (error, stdout, stderr) =>
        error ? fail(Object.assign(error, { message: `${error.message}\n${stderr}\n${stdout}` })) : done({ stdout, stderr }),
    ),
  );
  const summary = JSON.parse(stdout) as DemoSummary;
  expect(summary.ok, stderr).toBe(true);
  expect(summary.server).toBe('embedded');
  expect(summary.handoffs.length).toBeGreaterThanOrEqual(3);
  expect(summary.handoffs.map((h) => h.kind)).toEqual(['graceful stop', 'SIGKILL', 'SIGSTOP past the lease', 'forced (requestResign)']);
  for (let i = 1; i < summary.terms.length; i++) expect(summary.terms[i]).toBeGreaterThan(summary.terms[i - 1]!);
  expect(summary.staleTermActionsAccepted).toBe(0);
  expect(summary.frozenLeaderActionsAfterResume).toBe(0);
  expect(summary.actionsPerTerm.length).toBeGreaterThanOrEqual(4);
  expect(summary.durationMs).toBeLessThan(90_000);
  // Narration goes to stderr in --json mode, plain lines without a TTY.
  expect(stderr).toMatch(/ok {3}graceful handoff/);
});
