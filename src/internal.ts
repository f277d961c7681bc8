/**
 * The one internal entry, for the CLI: raw notifications of a channel on the shared LISTEN
 * connection (for `watch`), the identifier check its `--channel` goes through, and the
 * diagnosis of connection and server errors that both the elector and the CLI's messages use,
 * and the test for the library's own rows in the lease table. Not part of
 * the public API (a notification is a hint; applications watch leaders with `watchLeader`), so
 * `src/index.ts` does not export it.
 */

export { diagnose } from './diagnose.js';
export { isReservedName } from './lease/reserved.js';
export type { ChannelSubscriber } from './listen/notifier.js';
export { subscribeChannel } from './listen/notifier.js';
export { checkIdentifier } from './util/identifier.js';
