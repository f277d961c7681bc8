/**
 * The lease table's own namespace. Besides elections, the library keeps rows of its own in
 * the table (group membership, node-cron fire claims) so that they get the same statements,
 * the same database clock and the same privileges as leases. Their names all start with this
 * prefix, which election names may not use: a member row can never be mistaken for an
 * election (or campaigned for), and `listLeases` can leave them out.
 */
export const RESERVED_PREFIX = 'drizzle-leader:';

export function isReservedName(name: string): boolean {
  return name.startsWith(RESERVED_PREFIX);
}
