/**
 * One clear line for every error an operator can cause or fix: what is wrong and what to do.
 */
import { DrizzleLeaderError } from '../index.js';
import { diagnose } from '../internal.js';

/** Bad input on the command line (exit code 2). */
export class UsageError extends DrizzleLeaderError {
  override name = 'UsageError';
}

export interface ExplainedError {
  readonly message: string;
  /** True when the operator can fix it (bad input, unreachable server, missing table): exit code 2. */
  readonly operator: boolean;
}

export function explainError(error: unknown): ExplainedError {
  if (error instanceof UsageError) return { message: error.message, operator: true };
  const diagnosis = diagnose(error);
  if (diagnosis) return { message: diagnosis.message, operator: true };
  if (error instanceof DrizzleLeaderError) return { message: error.message, operator: true };
  const message = error instanceof Error ? error.message : String(error);
  return { message, operator: false };
}
