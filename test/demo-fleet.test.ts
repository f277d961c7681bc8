/**
 * `drizzle-leader demo --fleet` against the embedded server, as on a fresh machine: every step
 * passes and the summary shows what it narrates; Ctrl-C leaves no server and no directory behind.
 */
import { expect, it, vi } from 'vitest';
import { pgrep, runCli, withInterruptibleDemo, withoutDatabaseUrl } from './support/demo.js';

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
  const { stdout, stderr } = await runCli(['demo', '--fleet', '--json'], { env: withoutDatabaseUrl(), timeout: 170_000 });
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
  await withInterruptibleDemo(['demo', '--fleet'], 'demo-fleet-interrupt-', async (demo) => {
    await vi.waitFor(() => expect(demo.output()).toMatch(/ok {3}balanced start/), { timeout: 120_000, interval: 50 });
    expect(demo.servers()).toHaveLength(1);
    expect(await pgrep(['-f', 'fleet-member'])).not.toBe('');
    await demo.interrupt();
    await vi.waitFor(() => expect(demo.servers()).toEqual([]), { timeout: 10_000, interval: 100 });
    expect(await pgrep(['-f', demo.tmp])).toBe('');
    // The members are this demo's children: none outlives it.
    await vi.waitFor(async () => expect(await pgrep(['-g', String(demo.child.pid), '-f', 'fleet-member'])).toBe(''), {
      timeout: 10_000,
      interval: 100,
    });
  });
});
