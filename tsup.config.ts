import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/schema.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  // `import.meta.url` (where the bundled migrations live) needs a shim in the CommonJS build.
  shims: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  splitting: true,
});
