/**
 * The trust window of one leadership (River's `leadershipTerm`), as a value.
 *
 * When an elect or renew attempt *starts*, the elector reads both local clocks; if the attempt
 * succeeds, it trusts the lease until that start + `ttl` − `safetyMargin`. The database cannot
 * have set `expires_at` before the attempt started, so this local deadline falls before the
 * lease can expire whatever the clocks' offsets (safety rules 1 and 2; a clock *rate* error
 * larger than the margin over one `ttl` is the limit).
 *
 * Trust ends when EITHER clock says the window has passed: the monotonic clock is immune to
 * NTP steps but stops while the host is suspended (Linux CLOCK_MONOTONIC); the wall clock keeps
 * counting through a suspend. A wall clock stepped backwards cannot extend trust (the monotonic
 * clock still ends it); one stepped forwards ends it early, which is safe.
 */
import type { SessionBounds } from '../driver/types.js';
import { type Clock, type Instant, readClock } from '../util/clock.js';

export class TrustWindow {
  /** When the attempt that earned this window started. Renewals are spaced from here. */
  readonly startedAt: Instant;
  /** `ttl - safetyMargin`: the one place that subtraction is made. */
  readonly lengthMs: number;

  private constructor(startedAt: Instant, lengthMs: number) {
    this.startedAt = startedAt;
    this.lengthMs = lengthMs;
  }

  /** The window earned by an attempt that started at `attemptStartedAt`. */
  static start(attemptStartedAt: Instant, timing: { readonly ttl: number; readonly safetyMargin: number }): TrustWindow {
    return new TrustWindow(attemptStartedAt, timing.ttl - timing.safetyMargin);
  }

  /** Milliseconds of trust left now, by the more conservative clock; zero or negative once over. */
  remaining(now: Instant): number {
    const byMonotonic = this.startedAt.monotonic + this.lengthMs - now.monotonic;
    const byWall = this.startedAt.wall + this.lengthMs - now.wall;
    return Math.min(byMonotonic, byWall);
  }

  trusted(now: Instant): boolean {
    return this.remaining(now) > 0;
  }

  /** Milliseconds since the attempt started, by the monotonic clock. */
  elapsed(now: Instant): number {
    return now.monotonic - this.startedAt.monotonic;
  }

  /** A renewal deadline that reads `clock` each time it is asked. */
  deadline(clock: Clock): { remainingMs(): number } {
    return { remainingMs: () => this.remaining(readClock(clock)) };
  }
}

/**
 * The server-side bounds of the elector's own connections, from the same timing:
 * - `statement_timeout`: the trust window; an answer later than that is never believed anyway,
 *   and the renewal's own client-side deadline (what is left of the window) ends it sooner.
 * - `lock_timeout`: the safety margin (50 ms to 2 s): a statement waiting behind a row lock held
 *   by a stuck session gives up and retries instead of holding a connection; the row locks the
 *   candidates' own statements take last microseconds and never come near it.
 * - `idle_in_transaction_session_timeout`: the safety margin (100 ms to 5 s). The elector's own
 *   statements are single statements and never leave a transaction open; this is the backstop
 *   for any that does (a process frozen inside one loses its session and its locks).
 */
export function sessionBounds(timing: { readonly ttl: number; readonly safetyMargin: number }): SessionBounds {
  return {
    statementTimeoutMs: Math.floor(timing.ttl - timing.safetyMargin),
    lockTimeoutMs: Math.floor(Math.max(50, Math.min(2_000, timing.safetyMargin))),
    idleInTransactionTimeoutMs: Math.floor(Math.max(100, Math.min(5_000, timing.safetyMargin))),
  };
}
