import type { ElectorStats } from './elector.js';

/** Messages between the demo (parent) and its candidate processes, over the IPC channel of `fork`. */

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
