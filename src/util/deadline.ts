/**
 * Client-side bounds. Every wait the library does on the network has one, so a peer that
 * stops answering costs a known amount of time, never a hang (safety rule 6).
 */
import { DeadlineExceededError } from '../errors.js';

/**
 * Resolves or rejects like `promise`, or rejects with `DeadlineExceededError(message())` after
 * `ms`, whichever comes first. The loser is left to settle on its own (its rejection is handled).
 *
 * `promise` is subscribed to once: a Drizzle query is a lazy thenable that sends its statement
 * at every `then()`, so handling its rejection and racing it separately would run it twice.
 */
export async function withDeadline<T>(promise: PromiseLike<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const once = Promise.resolve(promise);
  once.catch(() => {});
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceededError(message())), Math.max(0, ms));
  });
  try {
    return await Promise.race([once, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `promise` settles or after `ms`, whichever is first; never rejects. True if it settled. */
export async function settledWithin(promise: Promise<unknown> | null | undefined, ms: number): Promise<boolean> {
  if (!promise) return true;
  let timer: NodeJS.Timeout | undefined;
  const settled = promise.then(
    () => true,
    () => true,
  );
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}
