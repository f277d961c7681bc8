/**
 * The leader's work in flight: `runWhileLeader` tasks and lease-checked transactions, each under
 * the term it started in. An ordered handover (stop, resign, a requested resignation) waits for
 * the work of the ending term before the lease is given up, so a successor's term begins after
 * its predecessor's work has returned — the handover client-go's ReleaseOnCancel got wrong
 * (kubernetes #139991) and Cilium's stop hooks overran (cilium #42920).
 */
import type { OpenTransaction } from '../lease/transaction.js';

export interface WorkItem {
  readonly term: number;
  /** What the work is, for the log line when it overruns the drain. */
  readonly label: string;
  /** Set once a lease-checked transaction holds its lock: what the server knows it by. */
  open: OpenTransaction | null;
  /** A lease-checked transaction's timeout (ms): by then plus its idle timeout, the server has ended it. */
  readonly timeoutMs?: number;
  /** Ends the work now, if it can be ended from outside (a lease-checked transaction: rolled back). */
  stop?: () => void;
}

export class LeaderWork {
  readonly #items = new Map<WorkItem, Promise<unknown>>();

  /** Tracks `done` under `term` until it settles. */
  track(item: WorkItem, done: Promise<unknown>): void {
    const settled = done.then(
      () => {},
      () => {},
    );
    this.#items.set(item, settled);
    void settled.then(() => this.#items.delete(item));
  }

  /** Whether `item` is still running. */
  has(item: WorkItem): boolean {
    return this.#items.has(item);
  }

  /** Work of `term` still running. */
  pending(term: number): WorkItem[] {
    return [...this.#items.keys()].filter((item) => item.term === term);
  }

  /**
   * Waits until the work of `term` has settled, `timeoutMs` has passed, or `cut` resolves (the
   * leadership ended on its own: nothing left to protect by waiting). Returns what still runs.
   */
  async drain(term: number, timeoutMs: number, cut: Promise<void>): Promise<WorkItem[]> {
    const waiting = [...this.#items].filter(([item]) => item.term === term).map(([, settled]) => settled);
    if (waiting.length > 0 && timeoutMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      try {
        await Promise.race([Promise.all(waiting), late, cut]);
      } finally {
        clearTimeout(timer);
      }
    }
    return this.pending(term);
  }
}
