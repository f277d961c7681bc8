/**
 * The baseline many Node projects use: a session-level advisory lock, polled by followers with
 * `pg_try_advisory_lock` on a dedicated connection (the pattern of the `advisory-lock` package's
 * tryLock). Written here for the comparison only; no fencing token, no trust window.
 */
import postgres, { type Sql } from 'postgres';

export class AdvisoryLockCandidate {
  readonly #sql: Sql;
  readonly #key: number;
  readonly #pollMs: number;
  #leading = false;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    url: string,
    key: number,
    pollMs: number,
    private readonly onGained: () => void,
  ) {
    // One connection: a session lock lives and dies with its session.
    this.#sql = postgres(url, { max: 1, onnotice: () => {}, idle_timeout: 0 });
    this.#key = key;
    this.#pollMs = pollMs;
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  async start(): Promise<void> {
    await this.#attempt();
  }

  async #attempt(): Promise<void> {
    if (this.#stopped || this.#leading) return;
    const [row] = await this.#sql`select pg_try_advisory_lock(${this.#key}) as locked`.catch(() => [{ locked: false }]);
    if (row?.locked && !this.#stopped) {
      this.#leading = true;
      this.onGained();
      return;
    }
    if (!this.#stopped) this.#timer = setTimeout(() => void this.#attempt(), this.#pollMs);
  }

  /** Graceful: unlock and close the session. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#leading) await this.#sql`select pg_advisory_unlock(${this.#key})`.catch(() => {});
    this.#leading = false;
    await this.#sql.end({ timeout: 1 });
  }
}
