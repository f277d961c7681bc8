/** Capped exponential backoff with "equal jitter": never below half the step, so retries neither stampede nor spin. */
export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** The delay before retry number `attempt` (0-based). */
export function backoffDelay(attempt: number, { initialMs, maxMs }: Backoff): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
