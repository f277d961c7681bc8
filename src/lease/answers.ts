/**
 * The library believes an answer only if it can be the answer to the statement it sent: the
 * names asked about, the caller's own id on a win or a renewal, and a term that is an identity
 * value (a positive integer, never lower than the term renewed). A connection out of step with
 * the server (a transaction-mode pooler under postgres.js `prepare: true` was seen to hand one
 * statement's rows to another) must never make a process think it leads.
 */
import { UnexpectedAnswerError } from '../errors.js';
import type { LeaderInfo } from '../types.js';

export interface Expected {
  /** The statement, for the error's message. */
  readonly statement: string;
  /** The names the statement asked about. */
  readonly names: ReadonlySet<string> | string;
  /** The caller's id, when the lease must be its own (a win, a renewal). */
  readonly leaderId?: string;
  /** The term renewed: the answer's term is this one, or a later one (the row was gone and inserted again). */
  readonly atLeastTerm?: number;
}

/** `lease`, if it can answer the statement; else UnexpectedAnswerError. */
export function believed(lease: LeaderInfo, expected: Expected): LeaderInfo {
  const names = expected.names;
  const fail = (detail: string) => {
    throw new UnexpectedAnswerError(expected.statement, detail);
  };
  if (typeof lease.name !== 'string' || (typeof names === 'string' ? lease.name !== names : !names.has(lease.name)))
    fail(`name ${JSON.stringify(lease.name)} was not asked about`);
  if (!Number.isSafeInteger(lease.term) || lease.term < 1) fail(`term ${String(lease.term)} of "${lease.name}" is no identity value`);
  if (expected.leaderId !== undefined && lease.leaderId !== expected.leaderId)
    fail(`"${lease.name}" came back as ${JSON.stringify(lease.leaderId)}'s, not the caller's`);
  if (expected.atLeastTerm !== undefined && lease.term < expected.atLeastTerm)
    fail(`"${lease.name}" came back with term ${lease.term}, below the term renewed (${expected.atLeastTerm})`);
  // The time left is the server's own number; `expiresAt` is not checked: Drizzle parses its text,
  // which follows the session's DateStyle (an Invalid Date under 'SQL, DMY'), and a lease
  // pinned at 'infinity' has no finite time left. Both are real answers.
  if (typeof lease.remainingMs !== 'number' || Number.isNaN(lease.remainingMs)) fail(`"${lease.name}" came back without its time left`);
  return lease;
}
