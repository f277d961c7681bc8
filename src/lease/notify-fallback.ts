/**
 * Lease statements carry their NOTIFY inside them, so a notification commits with the change it
 * announces. But PostgreSQL refuses the whole statement when its notification queue is full
 * (SQLSTATE 54000, "too many notifications in the NOTIFY queue"): a LISTEN session that sits in
 * an open transaction keeps the queue from draining, and any role that can connect can fill it
 * on any channel. A hint must never cost a change of leadership (safety rule 5), so the
 * statement is sent once more without its NOTIFY; followers then learn of the change by their
 * regular polls, within the lease, as when a notification is lost.
 */
import { findCause } from '../util/cause.js';

function queueFull(error: unknown): boolean {
  // The server's own error, not a wrapper (whose message quotes the SQL, pg_notify included).
  const cause = findCause<{ code?: unknown; message?: unknown }>(
    error,
    (e) => e.code === '54000' && typeof e.message === 'string' && /NOTIFY queue/i.test(e.message),
  );
  return cause !== null;
}

/**
 * Runs `statement` with `channel`; if the server's NOTIFY queue is full, tells `dropped` and
 * runs it again with a null channel (the same statement, no notification).
 */
export async function notifyingIfPossible<T>(
  channel: string | null,
  statement: (channel: string | null) => Promise<T>,
  dropped: (error: unknown) => void,
): Promise<T> {
  try {
    return await statement(channel);
  } catch (error) {
    if (!queueFull(error)) throw error;
    dropped(error);
    return statement(null);
  }
}
