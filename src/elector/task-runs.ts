/**
 * The runs of one `runWhileLeader` task, shared by the single elector and the elector group so
 * both keep the same promises from one implementation: a run starts for each leadership gained
 * (never for one that already ended), its signal aborts when that leadership ends or the task is
 * cancelled, every run is tracked under its term so an ordered handover waits for it, and the
 * handle's `done` resolves only once every run has returned.
 */
import { DrizzleLeaderError } from '../errors.js';
import type { LeaderRun, Logger } from '../types.js';
import { deferred } from '../util/deferred.js';
import type { LeaderWork } from './work.js';

export class TaskRuns {
  readonly #work: LeaderWork;
  readonly #logger: Logger;
  readonly #label: string;
  readonly #owner = new AbortController();
  readonly #running = new Set<Promise<void>>();
  readonly #finished = deferred();
  readonly #onEnd: Array<() => void> = [];
  readonly handle: LeaderRun;

  constructor(work: LeaderWork, logger: Logger, label: string) {
    this.#work = work;
    this.#logger = logger;
    this.#label = label;
    const end = () => this.end();
    const runs = this.#running;
    this.handle = Object.freeze({
      cancel: end,
      done: this.#finished.promise,
      get running() {
        return runs.size > 0;
      },
      [Symbol.dispose]: end,
    });
  }

  /** The label of a task as logged when it overruns a drain. */
  static label(task: { name: string }, given: string | undefined): string {
    return given ?? (task.name ? `runWhileLeader task "${task.name}"` : 'a runWhileLeader task');
  }

  /** Calls `cleanup` when the runs end (the transition subscription, the owner's registry). */
  onEnd(cleanup: () => void): void {
    if (this.#owner.signal.aborted) cleanup();
    else this.#onEnd.push(cleanup);
  }

  /** Starts a run for a leadership of `term` whose signal is `leadership`; `context` goes into the failure log line. */
  launch(
    term: number,
    leadership: AbortSignal,
    context: Record<string, unknown>,
    call: (signal: AbortSignal) => void | Promise<void>,
  ): void {
    if (this.#owner.signal.aborted || leadership.aborted) return;
    const signal = AbortSignal.any([leadership, this.#owner.signal]);
    // A leadership that ended before the task got to run (stop() right after a gain) is not started at all.
    const run = Promise.resolve()
      .then(() => (signal.aborted ? undefined : call(signal)))
      .catch((error: unknown) => {
        if (!signal.aborted) this.#logger.error({ err: error, ...context, term }, 'drizzle-leader: leader task failed');
      });
    this.#running.add(run);
    this.#work.track({ term, label: this.#label, open: null }, run);
    void run.then(() => this.#running.delete(run));
  }

  /** No more runs; the running ones are aborted, and `done` resolves once they have returned. Idempotent. */
  end(): void {
    if (this.#owner.signal.aborted) return;
    this.#owner.abort(new DrizzleLeaderError('runWhileLeader was cancelled'));
    for (const cleanup of this.#onEnd.splice(0)) cleanup();
    void (async () => {
      while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
    })().then(() => this.#finished.resolve());
  }
}
