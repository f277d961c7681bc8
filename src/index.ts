export { Elector, createElector } from './elector.js';
export type { ElectorStats, Lease, LeadershipEvent, LeadershipListener, LeaderTask, LossReason } from './elector.js';
export { ELECTOR_DEFAULTS } from './options.js';
export type { ElectorOptions, ResolvedElectorOptions } from './options.js';
export { getLeader, requestResign, watchLeader } from './observe.js';
export type { ElectionRef, LeaderChange, LeaderInfo, LeaderWatch, WatchOptions } from './observe.js';
export { migrate, MIGRATE_DEFAULTS, MIGRATIONS_FOLDER } from './migrate.js';
export type { MigrateOptions } from './migrate.js';
export { createLeaderTable, DEFAULT_TABLE_NAME, riverLeader } from './schema.js';
export type { LeaderRow, LeaderTable, LeaderTableOptions } from './schema.js';
export type { LeaderDatabase } from './queries.js';
export { parseNotification, NOTIFICATION_VERSION } from './notification.js';
export type { LeadershipAction, LeadershipNotification } from './notification.js';
export { SILENT_LOGGER } from './logger.js';
export type { Logger } from './logger.js';
export {
  DrizzleLeaderError,
  ElectorStoppedError,
  InvalidOptionError,
  LeaseTableMissingError,
  UnsupportedDriverError,
} from './errors.js';
