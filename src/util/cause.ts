/** Drizzle wraps driver errors (`Failed query: ...`) with the driver's error as `cause`: look down the chain. */
export function findCause<T = { code?: unknown }>(error: unknown, matches: (candidate: T) => boolean, maxDepth = 5): T | null {
  for (let e: unknown = error, depth = 0; e && depth <= maxDepth; e = (e as { cause?: unknown }).cause, depth++) {
    if (typeof e === 'object' && matches(e as T)) return e as T;
  }
  return null;
}

/** The first SQLSTATE or Node error code found down the cause chain, or undefined. */
export function errorCode(error: unknown): string | undefined {
  const found = findCause<{ code?: unknown }>(error, (e) => typeof e.code === 'string');
  return found ? (found.code as string) : undefined;
}
