/**
 * The one internal entry, for the CLI: raw notifications of a channel on the shared LISTEN
 * connection (for `watch`), the identifier check its `--channel` goes through, and the walk
 * down an error's `cause` chain that both the elector and the CLI's error messages use. Not part of
 * the public API (a notification is a hint; applications watch leaders with `watchLeader`), so
 * `src/index.ts` does not export it.
 */
export type { ChannelSubscriber } from './listen/notifier.js';
export { subscribeChannel } from './listen/notifier.js';
export { findCause } from './util/cause.js';
export { checkIdentifier } from './util/identifier.js';
