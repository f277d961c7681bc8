/** The README's quick start works as written: run it as users would, against the test server. */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { createTestDatabase } from './support/db.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');

it('examples/quickstart.ts elects, writes through lease-checked transactions, and hands off on stop', async () => {
  const url = await createTestDatabase({ migrated: false });
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/quickstart.ts'], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: url },
    timeout: 60_000,
  });
  expect(stdout).toMatch(/worker-\w: gained term \d+/);
  expect(stdout).toMatch(/charged \(accepted\)/);
  expect(stdout).not.toMatch(/REJECTED/);
  const handoff = /handoff took ([\d.]+) ms/.exec(stdout);
  expect(handoff).not.toBeNull();
  const terms = [...stdout.matchAll(/gained term (\d+)/g)].map((m) => Number(m[1]));
  expect(terms).toHaveLength(2);
  expect(terms[1]).toBeGreaterThan(terms[0]!);
});
