/** A `ListenSession` for drivers whose LISTEN connection is an ordinary connection taking SQL text. */
import { quoteIdentifier } from '../util/identifier.js';
import type { ListenSession } from './types.js';

export function sqlListenSession(run: (text: string) => Promise<void>, close: () => Promise<void>): ListenSession {
  return {
    listen: (channel) => run(`listen ${quoteIdentifier(channel)}`),
    unlisten: (channel) => run(`unlisten ${quoteIdentifier(channel)}`),
    // LISTEN on a channel already listened to changes nothing and answers like any statement;
    // unlike `select 1`, it leaves the session showing what it is for in pg_stat_activity.
    heartbeat: (channel) => run(channel === undefined ? 'select 1' : `listen ${quoteIdentifier(channel)}`),
    close,
  };
}
