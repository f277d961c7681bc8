/**
 * What a failed lease statement means, for the single elector and the group alike: an error
 * that retrying cannot heal (the table missing or outdated, a wrong password, no privilege...)
 * becomes the library's typed error, for `start()` to reject with; anything else is retried,
 * and the reason said in one line.
 */
import { diagnose } from '../diagnose.js';
import { DatabaseUnusableError, LeaseTableMissingError, LeaseTableOutdatedError } from '../errors.js';
import { tableLabel } from '../options.js';
import type { LeaderTable } from '../schema.js';
import { errorCode } from '../util/cause.js';

export type FatalError = LeaseTableMissingError | LeaseTableOutdatedError | DatabaseUnusableError;

export function isFatal(error: unknown): error is FatalError {
  return error instanceof LeaseTableMissingError || error instanceof LeaseTableOutdatedError || error instanceof DatabaseUnusableError;
}

/** The typed error when retrying cannot help (else null), and what to say when it can (` (why)` or ''). */
export function classifyFailure(error: unknown, table: LeaderTable): { fatal: FatalError | null; why: string } {
  const code = errorCode(error);
  const diagnosis = diagnose(error);
  const fatal =
    code === '42P01'
      ? new LeaseTableMissingError(tableLabel(table), error)
      : code === '42703'
        ? new LeaseTableOutdatedError(tableLabel(table), error)
        : diagnosis?.fatal
          ? new DatabaseUnusableError(diagnosis.kind, diagnosis.message, error)
          : null;
  return { fatal, why: diagnosis ? ` (${diagnosis.message})` : '' };
}
