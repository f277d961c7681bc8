import { InvalidOptionError } from '../errors.js';

/**
 * Names that become Postgres identifiers (schema, table, migrations table, NOTIFY channel). They
 * are always quoted, so any character is harmless; what Postgres cannot store (empty, NUL, more
 * than 63 bytes, which it would silently truncate) is refused at the door.
 */
export function checkIdentifier(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > 63 || value.includes('\0')) {
    throw new InvalidOptionError(option, value, 'a Postgres identifier of 1 to 63 bytes without NUL');
  }
  return value;
}

export function quoteIdentifier(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}
