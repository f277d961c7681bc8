/**
 * Everything an elector reports, in one place: the counters behind `elector.stats`, the
 * metrics hooks and the log lines. The elector calls one method per outcome; which counter,
 * which hook and which log level that means is decided here.
 */
import { ElectorError, type ElectorOperation } from '../errors.js';
import type { ElectorHooks, ElectorStats, Lease, Logger, LossReason } from '../types.js';

export class Instruments {
  readonly #name: string;
  readonly #logger: Logger;
  readonly #hooks: ElectorHooks;
  readonly #stats: ElectorStats = {
    elections: { won: 0, denied: 0, failed: 0 },
    renewals: { ok: 0, denied: 0, failed: 0 },
    leadershipsLost: 0,
    notifications: { received: 0, ignored: 0 },
  };

  constructor(options: { readonly name: string; readonly logger: Logger; readonly hooks: ElectorHooks }) {
    this.#name = options.name;
    this.#logger = options.logger;
    this.#hooks = options.hooks;
  }

  get logger(): Logger {
    return this.#logger;
  }

  /** A copy of the counters. */
  stats(): ElectorStats {
    return structuredClone(this.#stats);
  }

  election(outcome: 'won' | 'denied' | 'failed', durationMs: number): void {
    this.#stats.elections[outcome]++;
    this.#hook('election', (h) => h.election?.(outcome, durationMs));
  }

  renewal(outcome: 'ok' | 'denied' | 'failed', durationMs: number): void {
    this.#stats.renewals[outcome]++;
    this.#hook('renewal', (h) => h.renewal?.(outcome, durationMs));
  }

  gained(lease: Lease, sinceNotificationMs: number | null): void {
    this.#logger.info({ name: lease.name, term: lease.term, leaderId: lease.leaderId }, 'drizzle-leader: leadership gained');
    this.#hook('gained', (h) => h.gained?.(lease.term, sinceNotificationMs === null ? {} : { sinceNotificationMs }));
  }

  lost(term: number, reason: LossReason, heldMs: number): void {
    this.#stats.leadershipsLost++;
    const expected = reason === 'resigned' || reason === 'stopped';
    this.#logger[expected ? 'info' : 'warn']({ name: this.#name, term, reason }, 'drizzle-leader: leadership lost');
    this.#hook('lost', (h) => h.lost?.(term, reason, heldMs));
  }

  /** A failure the elector handles by retrying or waiting: logged as a warning and given to the error hook. */
  handled(operation: ElectorOperation, error: unknown, message: string, fields: object = {}): ElectorError {
    const handled = error instanceof ElectorError ? error : new ElectorError(operation, error);
    this.#logger.warn({ err: handled, name: this.#name, ...fields }, message);
    this.#hook('error', (h) => h.error?.(handled, operation));
    return handled;
  }

  notification(accepted: boolean): void {
    this.#stats.notifications.received++;
    if (!accepted) this.#stats.notifications.ignored++;
  }

  /** Calls a metrics hook; a throwing hook is logged, never allowed to disturb the elector. */
  #hook(hook: keyof ElectorHooks, call: (hooks: ElectorHooks) => void): void {
    try {
      call(this.#hooks);
    } catch (error) {
      this.#logger.error({ err: error, hook }, 'drizzle-leader: a metrics hook threw');
    }
  }
}
