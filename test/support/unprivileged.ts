/**
 * A client logged in as `mallory`: a role that may connect and nothing else (no privilege on
 * the lease table). Anyone can NOTIFY, so the forged-hint tests send theirs as this role.
 */
import postgres, { type Sql } from 'postgres';

/** `asAdmin` runs one statement as a role that may create roles (the tests' own connection). */
export async function unprivilegedClient(url: string, asAdmin: (sql: string) => Promise<unknown>, max = 1): Promise<Sql> {
  await asAdmin(`do $$ begin create role mallory login password 'mallory'; exception when duplicate_object then null; end $$`);
  const as = new URL(url);
  as.username = 'mallory';
  as.password = 'mallory';
  return postgres(as.toString(), { max, onnotice: () => {} });
}
