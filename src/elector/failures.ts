/**
 * What a failed lease statement means, for the single elector and the group alike: an error
 * that retrying cannot heal (the table missing or outdated, a wrong password, no privilege...)
 * becomes the library's typed error, for `start()` to reject with; anything else is retried,
 * and the reason said in one line.
 */
import { diagnose } from '../diagnose.js';
import {
  DatabaseUnusableError,
  DeadlineExceededError,
  LeaseTableMissingError,
  LeaseTableOutdatedError,
  UnexpectedAnswerError,
} from '../errors.js';
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

/**
 * What a failed statement says about the connections it ran on. No answer in time, twice
 * running: the connection may be dead without anyone being told (a vanished peer), and the driver
 * would keep using it. Not at the first: a merely slow answer still arrives, and a lease it carries
 * is then released. An answer that cannot be the statement's (UnexpectedAnswerError): the
 * connection is out of step with the server, and every later answer on it is suspect: at once.
 */
export function afterFailure(error: unknown, unanswered: number): { readonly unanswered: number; readonly reset: boolean } {
  if (error instanceof UnexpectedAnswerError) return { unanswered: 0, reset: true };
  if (!(error instanceof DeadlineExceededError)) return { unanswered, reset: false };
  return unanswered + 1 >= 2 ? { unanswered: 0, reset: true } : { unanswered: unanswered + 1, reset: false };
}
