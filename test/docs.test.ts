/**
 * The docs cannot drift from the repository: every relative link resolves, every npm script
 * the README's "Try it" and "Development" blocks name exists, and the README's driver matrix is
 * the one generated from src/driver/matrix.ts, naming every Postgres driver of the installed
 * drizzle-orm and only tests that exercise them.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DRIVER_MATRIX, withDriverMatrix } from '../src/dev/driver-matrix.js';

const root = resolve(import.meta.dirname, '..');
const documents = [
  'README.md',
  'bench/README.md',
  'examples/basic/README.md',
  'src/README.md',
  ...readdirSync(join(root, 'docs')).map((f) => `docs/${f}`),
];

describe('docs', () => {
  it.each(documents)('every relative link in %s resolves', (document) => {
    const text = readFileSync(join(root, document), 'utf8');
    const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^(https?:|mailto:|#)/.test(l));
    const broken = links.filter((link) => !existsSync(resolve(root, dirname(document), link.replace(/#.*$/, ''))));
    expect(broken).toEqual([]);
  });

  it("every npm script the README's Try it and Development blocks name exists", () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const scripts = Object.keys(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts);
    const named = [...readme.matchAll(/^npm (?:run )?([\w:-]+)/gm)].map((m) => m[1]!).filter((s) => !['install', 'ci'].includes(s));
    expect(named.length).toBeGreaterThan(4);
    expect(named.filter((s) => !scripts.includes(s))).toEqual([]);
  });

  it('the README driver matrix is the generated one (npm run docs:matrix)', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(withDriverMatrix(readme)).toBe(readme);
  });

  it('the matrix names every PostgreSQL driver of the installed drizzle-orm, by its own entityKind', () => {
    const orm = join(root, 'node_modules', 'drizzle-orm');
    const driverFiles = readdirSync(orm, { recursive: true, encoding: 'utf8' }).filter(
      (f) => f.endsWith('driver.js') && /from "\.\.\/(\.\.\/)?pg-core/.test(readFileSync(join(orm, f), 'utf8')),
    );
    expect(driverFiles.length).toBeGreaterThan(8);
    for (const file of driverFiles) {
      const module = `drizzle-orm/${dirname(file)}`;
      const row = DRIVER_MATRIX.find((r) => r.module === module);
      expect(row, module).toBeDefined();
      const kinds = [...readFileSync(join(orm, file), 'utf8').matchAll(/static \[entityKind\] = "(\w+Database)"/g)].map((m) => m[1]);
      expect(kinds, module).toContain(row!.entityKind);
    }
  });

  it.each(DRIVER_MATRIX.map((row) => [row.module, row] as const))('the matrix row of %s names tests that exercise it', (_module, row) => {
    if (row.evidence.length === 0) {
      expect(row.tested).toMatch(/^(not testable here: |as postgres-js$)/);
    }
    for (const { file, mentions } of row.evidence) {
      expect(existsSync(join(root, file)), file).toBe(true);
      expect(readFileSync(join(root, file), 'utf8'), file).toContain(mentions);
    }
  });
});
