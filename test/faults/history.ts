/**
 * The history checker. Candidates report every leader action as `(at, term, pid, accepted)`:
 * `at` is a wall-clock timestamp taken before the `isLeader` check, `accepted` whether the
 * term-fenced write went through. Safety:
 *
 * 1. sorted by timestamp, the terms of all actions never decrease (no stale leader acted after
 *    a newer one started);
 * 2. each term belongs to exactly one pid;
 * 3. in commit order, the fenced table never accepted an older term after a newer one.
 *
 * A violation throws with the offending slice of the history, so a reader sees what happened.
 */
export interface ActionRecord {
  at: number;
  term: number;
  pid: number;
  accepted: boolean;
}

export interface FenceRecord {
  id: number;
  term: number;
  pid: number;
}

export class SafetyViolation extends Error {}

export function checkHistory(actions: ActionRecord[], fenceLog: FenceRecord[]): void {
  const sorted = [...actions].sort((a, b) => a.at - b.at || a.term - b.term);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.term < sorted[i - 1]!.term) {
      throw new SafetyViolation(`an action with an older term happened after a newer term had acted:\n${slice(sorted, i)}`);
    }
  }
  const owner = new Map<number, number>();
  for (const action of sorted) {
    const pid = owner.get(action.term);
    if (pid !== undefined && pid !== action.pid) {
      throw new SafetyViolation(
        `term ${action.term} acted from two processes (${pid} and ${action.pid}):\n${slice(sorted, sorted.indexOf(action))}`,
      );
    }
    owner.set(action.term, action.pid);
  }
  const fence = [...fenceLog].sort((a, b) => a.id - b.id);
  for (let i = 1; i < fence.length; i++) {
    if (fence[i]!.term < fence[i - 1]!.term) {
      const window = fence
        .slice(Math.max(0, i - 5), i + 5)
        .map((r) => `  #${r.id} term ${r.term} pid ${r.pid}`)
        .join('\n');
      throw new SafetyViolation(`the fenced table accepted term ${fence[i]!.term} after term ${fence[i - 1]!.term}:\n${window}`);
    }
  }
}

function slice(sorted: ActionRecord[], at: number): string {
  const t0 = sorted[0]?.at ?? 0;
  return sorted
    .slice(Math.max(0, at - 8), at + 8)
    .map(
      (a, i, all) =>
        `${all.indexOf(sorted[at]!) === i ? '>' : ' '} +${(a.at - t0).toFixed(1)} ms term ${a.term} pid ${a.pid} ${a.accepted ? 'accepted' : 'rejected'}`,
    )
    .join('\n');
}

/** One committed ledger write: `n` is the counter value it committed (the commit order). */
export interface LedgerRecord {
  n: number;
  term: number;
  pid: number;
}

/**
 * The lease-checked writers' history: sorted by the counter (which every write increments, so
 * it orders them by commit), the terms never decrease, and each term belongs to one process.
 * The ledger has no fence column: only the lease check keeps it in order.
 */
export function checkLedger(ledger: LedgerRecord[]): void {
  const sorted = [...ledger].sort((a, b) => a.n - b.n);
  const owner = new Map<number, number>();
  for (let i = 0; i < sorted.length; i++) {
    const row = sorted[i]!;
    const window = () =>
      sorted
        .slice(Math.max(0, i - 5), i + 5)
        .map((r) => `${r === row ? '>' : ' '} #${r.n} term ${r.term} pid ${r.pid}`)
        .join('\n');
    if (i > 0 && row.term < sorted[i - 1]!.term) {
      throw new SafetyViolation(`write #${row.n} of term ${row.term} committed after a write of term ${sorted[i - 1]!.term}:\n${window()}`);
    }
    const pid = owner.get(row.term);
    if (pid !== undefined && pid !== row.pid) {
      throw new SafetyViolation(`term ${row.term} committed from two processes (${pid} and ${row.pid}):\n${window()}`);
    }
    owner.set(row.term, row.pid);
  }
}
