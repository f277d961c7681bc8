/**
 * The elector's metrics hooks (`ElectorHooks`) mapped onto an OpenTelemetry meter: pass
 * `metrics.getMeter('drizzle-leader')` from `@opentelemetry/api`; this module imports
 * nothing from it.
 */
import type { ElectorHooks } from './types.js';

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
