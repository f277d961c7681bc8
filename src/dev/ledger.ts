/**
 * The audit of a ledger written by lease-checked leaders (the demo's, and any test's): rows
 * `(n, term, pid)` where `n` orders the commits.
 */

/**
 * The ledger in commit order (the counter row serializes the writes): a row whose term is
 * older than the row before it, or whose term another process already committed with, is a
 * deposed leader's write that got through.
 */
export function staleTermCommits(ledger: readonly { n: number; term: number; pid: number }[]): number {
  const owner = new Map<number, number>();
  let stale = 0;
  let previous = Number.NEGATIVE_INFINITY;
  for (const row of [...ledger].sort((x, y) => x.n - y.n)) {
    const pid = owner.get(row.term);
    if (row.term < previous || (pid !== undefined && pid !== row.pid)) stale++;
    if (pid === undefined) owner.set(row.term, row.pid);
    previous = Math.max(previous, row.term);
  }
  return stale;
}
