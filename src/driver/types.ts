/**
 * The driver contract: everything the library needs from a Drizzle Postgres driver beyond
 * plain Drizzle queries, in one place. This file imports no implementation; each adapter
 * (`postgres-js.ts`, `node-postgres.ts`) fulfils it in a thin file of its own, and
 * `detect.ts` picks one.
 */

/** Events of one dedicated LISTEN connection. */
export interface ListenEvents {
  notification(channel: string, payload: string): void;
  /** The connection dropped (not called after `close()`). */
  closed(error?: unknown): void;
}

/** One dedicated connection for LISTEN: the notifier sends LISTEN/UNLISTEN through `run`. */
export interface ListenSession {
  /** Sends one simple-protocol statement and waits for it to complete. */
  run(text: string): Promise<void>;
  close(): Promise<void>;
}

/** Opens dedicated LISTEN connections. */
export interface ListenDriver {
  open(events: ListenEvents): Promise<ListenSession>;
}

/** Runs `fn` with raw statements on one connection held for its whole duration (session-level advisory locks). */
export type WithSession = <T>(fn: (run: (text: string) => Promise<void>) => Promise<T>) => Promise<T>;

/**
 * What a database object can do, found once per object by `detectDriver`. A capability is
 * null when the driver cannot provide it (HTTP drivers): the library then runs without it,
 * poll-only for `listen`, and says so once.
 */
export interface DriverCapabilities {
  /** The driver client behind the Drizzle object (`db.$client`): the key the LISTEN connection is shared under. */
  readonly client: object | null;
  /** Dedicated LISTEN connections, or null: poll-only. */
  readonly listen: ListenDriver | null;
  /** Interactive transactions on one connection (BEGIN ... COMMIT), needed for server-side deadlines. */
  readonly transactions: boolean;
  /** A dedicated session for session-level advisory locks (migrations), or null. */
  readonly session: WithSession | null;
}
