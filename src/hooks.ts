/**
 * Observability: a small hook interface the elector calls at every outcome, so counters and
 * latencies can go to any metrics system. `openTelemetryHooks(meter)` maps them onto an
 * OpenTelemetry meter (pass `metrics.getMeter('drizzle-leader')` from `@opentelemetry/api`;
 * this module imports nothing from it).
 */
import type { DrizzleLeaderError } from './errors.js';

export type ElectorOperation = 'election' | 'renewal' | 'resignation' | 'listen';

export interface ElectorHooks {
  /** An election statement finished: won, denied (someone holds the lease) or failed. */
  election?(outcome: 'won' | 'denied' | 'failed', durationMs: number): void;
  /** A renewal statement finished: ok, denied (lease lost) or failed. */
  renewal?(outcome: 'ok' | 'denied' | 'failed', durationMs: number): void;
  /**
   * Leadership gained. `sinceNotificationMs`: time from the `resigned` notification that woke
   * this follower to the win, when a notification woke it (the local part of a handoff).
   */
  gained?(term: number, details: { sinceNotificationMs?: number }): void;
  /** Leadership ended. */
  lost?(term: number, reason: string, heldMs: number): void;
  /** An error the elector handled (it retries); `error.cause` holds the driver's error. */
  error?(error: DrizzleLeaderError, operation: ElectorOperation): void;
}

/** The part of an OpenTelemetry `Meter` this module uses (structural, so no import is needed). */
export interface MeterLike {
  createCounter(
    name: string,
    options?: { description?: string; unit?: string },
  ): { add(value: number, attributes?: Record<string, string | number>): void };
  createHistogram(
    name: string,
    options?: { description?: string; unit?: string },
  ): { record(value: number, attributes?: Record<string, string | number>): void };
}

/** Hooks that record OpenTelemetry metrics: elections and renewals by outcome, leadership changes, errors, and latencies. */
export function openTelemetryHooks(meter: MeterLike, attributes: Record<string, string> = {}): ElectorHooks {
  const statements = meter.createCounter('drizzle_leader.statements', { description: 'Election and renewal statements by outcome' });
  const statementDuration = meter.createHistogram('drizzle_leader.statement.duration', {
    description: 'Election and renewal round trips',
    unit: 'ms',
  });
  const leadership = meter.createCounter('drizzle_leader.leadership.changes', { description: 'Leaderships gained and lost' });
  const handoff = meter.createHistogram('drizzle_leader.handoff.duration', {
    description: 'From a resignation notification to leadership',
    unit: 'ms',
  });
  const errors = meter.createCounter('drizzle_leader.errors', { description: 'Handled errors by operation' });
  return {
    election(outcome, ms) {
      statements.add(1, { ...attributes, operation: 'election', outcome });
      statementDuration.record(ms, { ...attributes, operation: 'election' });
    },
    renewal(outcome, ms) {
      statements.add(1, { ...attributes, operation: 'renewal', outcome });
      statementDuration.record(ms, { ...attributes, operation: 'renewal' });
    },
    gained(_term, details) {
      leadership.add(1, { ...attributes, change: 'gained' });
      if (details.sinceNotificationMs !== undefined) handoff.record(details.sinceNotificationMs, attributes);
    },
    lost(_term, reason) {
      leadership.add(1, { ...attributes, change: 'lost', reason });
    },
    error(_error, operation) {
      errors.add(1, { ...attributes, operation });
    },
  };
}
