/**
 * The two local clocks the elector reads, injectable so tests can move time by hand (like
 * River's stubbed `Time` and client-go's `clock.Clock`) instead of sleeping or freezing the
 * event loop.
 *
 * Both are read because each fails differently: the monotonic clock never jumps with NTP but on
 * Linux stops while the host is suspended; the wall clock keeps counting through a suspend but
 * can be stepped. Trust ends when either says the window has passed (see `elector/trust.ts`).
 */
export interface Clock {
  /** Monotonic milliseconds (e.g. `performance.now()`); only differences are meaningful. */
  monotonic(): number;
  /** Wall-clock epoch milliseconds (e.g. `Date.now()`). */
  wall(): number;
}

export const systemClock: Clock = Object.freeze({
  monotonic: () => performance.now(),
  wall: () => Date.now(),
});

/** One reading of both clocks, taken together. */
export interface Instant {
  readonly monotonic: number;
  readonly wall: number;
}

export function readClock(clock: Clock): Instant {
  return { monotonic: clock.monotonic(), wall: clock.wall() };
}
