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
  | { type: 'error'; pid: number; message: string }
  | { type: 'stats'; pid: number; stats: ElectorStats };

export type ParentMessage = { type: 'stop' } | { type: 'stats' };

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export const wallNow = () => performance.timeOrigin + performance.now();
