/**
 * Writes the README's driver matrix from `src/driver/matrix.ts` (`npm run docs:matrix`), or with
 * `--check` exits 1 when the README differs from it. The matrix sits between two HTML comments,
 * so the rest of the README is never touched.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DRIVER_MATRIX, renderDriverMatrix } from '../driver/matrix.js';

export { DRIVER_MATRIX };

const START = '<!-- driver-matrix:start (generated from src/driver/matrix.ts by npm run docs:matrix) -->';
const END = '<!-- driver-matrix:end -->';

/** The README with its matrix block replaced by the generated one. */
export function withDriverMatrix(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start === -1 || end < start) throw new Error(`README.md has no driver matrix block (${START} ... ${END})`);
  return `${readme.slice(0, start)}${START}\n${renderDriverMatrix()}${readme.slice(end)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const path = fileURLToPath(new URL('../../README.md', import.meta.url));
  const readme = readFileSync(path, 'utf8');
  const wanted = withDriverMatrix(readme);
  if (process.argv.includes('--check')) {
    if (wanted !== readme) {
      console.error('README.md driver matrix is out of date: run npm run docs:matrix');
      process.exit(1);
    }
  } else if (wanted !== readme) {
    writeFileSync(path, wanted);
  }
}
