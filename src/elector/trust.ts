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

  /**
   * The server-side budget for a statement sent now: a little inside what is left, so the
   * server gives up (lock_timeout / statement_timeout) before the client's own deadline.
   */
  budget(now: Instant): number {
    const left = this.remaining(now);
    return Math.floor(left - Math.min(100, left / 10));
  }

  /** Milliseconds since the attempt started, by the monotonic clock. */
  elapsed(now: Instant): number {
    return now.monotonic - this.startedAt.monotonic;
  }

  /** A renewal deadline that reads `clock` each time it is asked. */
  deadline(clock: Clock): { remainingMs(): number; serverBudgetMs(): number } {
    return {
      remainingMs: () => this.remaining(readClock(clock)),
      serverBudgetMs: () => this.budget(readClock(clock)),
    };
  }
}
