/**
 * The layering of docs/architecture.md, checked: no import cycles (dpdm), the library core
 * never imports the CLI or dev tooling, the driver contract imports no implementation, and
 * tests, benchmarks and examples reach the library only through its public entries or dev/.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');

function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(ts|js|cjs)$/.test(entry.name))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)));
}

/** Every relative module a file imports (static, dynamic, and re-exports), as repository paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((s) => relative(root, resolve(join(root, dirname(file)), s)).replace(/\.js$/, '.ts'));
}

describe('architecture', () => {
  it('has no import cycles (dpdm, type imports included)', async () => {
    const dpdm = join(root, 'node_modules', '.bin', 'dpdm');
    const entries = ['src/index.ts', 'src/schema.ts', 'src/cli/main.ts', 'src/dev/candidate.ts', 'src/dev/testing.ts'];
    const { stdout } = await promisify(execFile)(dpdm, ['--no-warning', '--no-tree', '--exit-code', 'circular:1', ...entries], {
      cwd: root,
    });
    expect(stdout).toContain('no circular dependency');
  });

  it('the library core imports nothing from cli/ or dev/', () => {
    const core = filesUnder('src').filter((f) => !f.startsWith('src/cli/') && !f.startsWith('src/dev/'));
    expect(core.length).toBeGreaterThan(15);
    const offending = core.flatMap((f) =>
      importsOf(f)
        .filter((i) => i.startsWith('src/cli/') || i.startsWith('src/dev/'))
        .map((i) => `${f} -> ${i}`),
    );
    expect(offending).toEqual([]);
  });

  it('the driver contract imports no implementation (types only)', () => {
    expect(importsOf('src/driver/types.ts')).toEqual(['src/types.ts']);
    expect(readFileSync(join(root, 'src/driver/types.ts'), 'utf8')).not.toMatch(/^import (?!type )/m);
  });

  it('the driver matrix is data only: it imports nothing, and only detect.ts and dev/ read it', () => {
    expect(importsOf('src/driver/matrix.ts')).toEqual([]);
    expect(readFileSync(join(root, 'src/driver/matrix.ts'), 'utf8')).not.toMatch(/^import /m);
    const readers = filesUnder('src').filter((f) => importsOf(f).includes('src/driver/matrix.ts'));
    expect(readers.filter((f) => f !== 'src/driver/detect.ts' && !f.startsWith('src/dev/'))).toEqual([]);
  });

  it('driver adapters import only the contract, each other, util/ and the shared types', () => {
    const adapters = filesUnder('src/driver').filter((f) => f !== 'src/driver/types.ts');
    const allowed = (i: string) => i.startsWith('src/driver/') || i.startsWith('src/util/') || i === 'src/types.ts';
    const offending = adapters.flatMap((f) =>
      importsOf(f)
        .filter((i) => !allowed(i))
        .map((i) => `${f} -> ${i}`),
    );
    expect(offending).toEqual([]);
  });

  it('the CLI uses the public API, the one internal entry and dev/ only', () => {
    const allowed = (i: string) => i === 'src/index.ts' || i === 'src/internal.ts' || i.startsWith('src/cli/') || i.startsWith('src/dev/');
    const offending = filesUnder('src/cli').flatMap((f) =>
      importsOf(f)
        .filter((i) => !allowed(i))
        .map((i) => `${f} -> ${i}`),
    );
    expect(offending).toEqual([]);
  });

  it('the group is a layer beside the elector: it reuses trust, subscribers, the lease-checked work pieces, lease/ and listen/, never the single elector, and only index.ts imports it', () => {
    const group = filesUnder('src/group');
    expect(group.length).toBeGreaterThanOrEqual(3);
    const allowed = (i: string) =>
      i.startsWith('src/group/') ||
      i.startsWith('src/lease/') ||
      i.startsWith('src/listen/') ||
      i.startsWith('src/util/') ||
      i === 'src/elector/trust.ts' ||
      i === 'src/elector/subscribers.ts' ||
      // Lease-checked transactions and the ordered drain: one implementation for both.
      i === 'src/elector/lease-transaction.ts' ||
      i === 'src/elector/lease-work.ts' ||
      i === 'src/elector/work.ts' ||
      // The runs of a runWhileLeader task: one implementation for both.
      i === 'src/elector/task-runs.ts' ||
      i === 'src/elector/failures.ts' ||
      ['src/types.ts', 'src/errors.ts', 'src/options.ts', 'src/schema.ts', 'src/diagnose.ts', 'src/driver/types.ts'].includes(i);
    const offending = group.flatMap((f) =>
      importsOf(f)
        .filter((i) => !allowed(i))
        .map((i) => `${f} -> ${i}`),
    );
    expect(offending).toEqual([]);
    const importers = filesUnder('src')
      .filter((f) => !f.startsWith('src/group/') && !f.startsWith('src/dev/') && !f.startsWith('src/cli/'))
      .filter((f) => importsOf(f).some((i) => i.startsWith('src/group/')));
    expect(importers).toEqual(['src/index.ts']);
  });

  it('the cron coordinator is a layer on the lease table, beside the elector: it imports neither the elector nor the group, and only index.ts imports it', () => {
    const cron = filesUnder('src/cron');
    expect(cron.length).toBeGreaterThanOrEqual(2);
    const allowed = (i: string) =>
      i.startsWith('src/cron/') ||
      i.startsWith('src/lease/') ||
      i.startsWith('src/util/') ||
      ['src/types.ts', 'src/errors.ts', 'src/options.ts', 'src/schema.ts', 'src/logging.ts'].includes(i);
    const offending = cron.flatMap((f) =>
      importsOf(f)
        .filter((i) => !allowed(i))
        .map((i) => `${f} -> ${i}`),
    );
    expect(offending).toEqual([]);
    const importers = filesUnder('src')
      .filter((f) => !f.startsWith('src/cron/') && !f.startsWith('src/dev/') && !f.startsWith('src/cli/'))
      .filter((f) => importsOf(f).some((i) => i.startsWith('src/cron/')));
    expect(importers).toEqual(['src/index.ts']);
  });

  it('tests, benchmarks and examples import only public entries or dev/', () => {
    const users = [...filesUnder('test'), ...filesUnder('bench'), ...filesUnder('examples')];
    const allowed = (i: string) => !i.startsWith('src/') || i === 'src/index.ts' || i === 'src/schema.ts' || i.startsWith('src/dev/');
    const offending = users.flatMap((f) =>
      importsOf(f)
        .filter((i) => !allowed(i))
        .map((i) => `${f} -> ${i}`),
    );
    expect(offending).toEqual([]);
  });
});
