import type { ElectorStats } from '../index.js';

/**
 * Messages between a candidate process (`candidate.ts`) and its parent (the demo, the fault
 * suite, the failover test, the benchmarks), over the IPC channel of `fork`.
 */

export type CandidateMessage =
  | { type: 'ready'; pid: number; id: string }
  | { type: 'transition'; pid: number; event: 'gained' | 'lost'; term: number; reason?: string; at: number }
  | { type: 'action'; pid: number; term: number; at: number; accepted: boolean }
  | { type: 'stopping'; pid: number; at: number }
  /** Sent inside a ledger transaction, just before the process stops itself with SIGSTOP (asked by `freeze`). */
  | { type: 'freezing'; pid: number; term: number; at: number }
  | { type: 'error'; pid: number; message: string }
  | { type: 'stats'; pid: number; stats: ElectorStats };

/**
 * `freeze`: at its next ledger transaction, after the lease check and before its first write,
 * the candidate stops itself with SIGSTOP (the parent resumes it with SIGCONT). A freeze the
 * parent sends from outside lands inside the transaction only by luck of timing, which a
 * loaded machine does not give.
 */
export type ParentMessage = { type: 'stop' } | { type: 'stats' } | { type: 'freeze' };

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export const wallNow = () => performance.timeOrigin + performance.now();
