/**
 * The docs cannot drift from the repository: every relative link resolves, and every npm script
 * the README's "Try it" and "Development" blocks name exists.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

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
});
