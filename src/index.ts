export type { ElectorStats, LeadershipEvent, LeadershipListener, LeaderTask, Lease, LossReason } from './elector.js';
export { createElector, Elector } from './elector.js';
export {
  DrizzleLeaderError,
  ElectorError,
  ElectorStoppedError,
  InvalidOptionError,
  LeaseTableMissingError,
  UnsupportedDriverError,
} from './errors.js';
export type { ElectorHooks, ElectorOperation, MeterLike } from './hooks.js';
export { openTelemetryHooks } from './hooks.js';
export type { Logger } from './logger.js';
export { SILENT_LOGGER } from './logger.js';
export type { MigrateOptions } from './migrate.js';
export { MIGRATE_DEFAULTS, MIGRATIONS_FOLDER, migrate } from './migrate.js';
export type { LeadershipAction, LeadershipNotification } from './notification.js';
export { NOTIFICATION_VERSION, parseNotification } from './notification.js';
export type { ElectionRef, LeaderChange, LeaderInfo, LeaderWatch, WatchOptions } from './observe.js';
export { getLeader, requestResign, watchLeader } from './observe.js';
export type { ElectorOptions, ResolvedElectorOptions } from './options.js';
export { ELECTOR_DEFAULTS } from './options.js';
export type { LeaderDatabase } from './queries.js';
export type { LeaderRow, LeaderTable, LeaderTableOptions } from './schema.js';
export { createLeaderTable, DEFAULT_TABLE_NAME, riverLeader } from './schema.js';
