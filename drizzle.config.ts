import { defineConfig } from 'drizzle-kit';

// The migrations in ./drizzle are generated from src/schema.ts by `drizzle-kit generate`
// and shipped in the package; `migrate()` applies them. Never edit them by hand.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema.ts',
  out: './drizzle',
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://localhost:5432/postgres' },
});
