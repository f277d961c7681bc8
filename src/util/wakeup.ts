/**
 * The sleep of a loop that something else can cut short: the elector's loop, the LISTEN
 * supervisor's backoff, a watcher's poll. A wake that arrives while the loop is awake is kept
 * (coalesced into one), so the next `sleep` returns at once and no wake is ever lost.
 */
export class Wakeup {
  #wake: (() => void) | null = null;
  #pending = false;

  /** Sleeps until `ms` pass or `wake()` is called; returns at once if a wake is pending. */
  sleep(ms: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    if (!(ms > 0)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  /** Ends the current sleep, or makes the next one return at once. */
  wake(): void {
    if (this.#wake) this.#wake();
    else this.#pending = true;
  }

  /** Forgets a pending wake (the loop has just looked at the world anyway). */
  clear(): void {
    this.#pending = false;
  }
}
