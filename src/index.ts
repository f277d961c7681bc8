/** The public API of drizzle-leader. Everything a user imports is named here, explicitly. */
export {
  CronRunCoordinator,
  createRunCoordinator,
  RUN_COORDINATOR_DEFAULTS,
  RunClaimError,
  type RunCoordinatorOptions,
} from './cron/run-coordinator.js';
export { createElector, Elector, leaseHeld } from './elector/elector.js';
export type { LeaseTransactionConfig, LeaseTransactionFn, TransactionOf } from './elector/lease-transaction.js';
export {
  CommitOutcomeUnknownError,
  DatabaseUnusableError,
  DeadlineExceededError,
  DrizzleLeaderError,
  ElectorError,
  type ElectorOperation,
  ElectorStoppedError,
  InvalidOptionError,
  LeadershipLostError,
  type LeadershipLostReason,
  LeaseTableMismatchError,
  LeaseTableMissingError,
  LeaseTableOutdatedError,
  ReservedNameError,
  TransactionAbortedError,
  UnexpectedAnswerError,
  UnsupportedDriverError,
} from './errors.js';
export { assign as assignNames, type Member } from './group/balance.js';
export { DuplicateNameError } from './group/errors.js';
export type {
  ElectorGroupOptions,
  GroupEvent,
  GroupListener,
  GroupLossReason,
  GroupStats,
  GroupTask,
  GroupTaskHandle,
} from './group/group.js';
export { createElectorGroup, ElectorGroup, groupQuotas, MEMBER_PREFIX } from './group/group.js';
export type { LeadershipAction, LeadershipNotification } from './listen/payload.js';
export { NOTIFICATION_VERSION, parseNotification } from './listen/payload.js';
export { SILENT_LOGGER, stderrLogger } from './logging.js';
export type { MigrateOptions } from './migrate.js';
export { MIGRATE_DEFAULTS, MIGRATIONS_FOLDER, migrate } from './migrate.js';
export type { ElectionRef, LeaderChange, LeaderWatch, WatchOptions } from './observe.js';
export { getLeader, listLeases, requestResign, watchLeader } from './observe.js';
export type { MeterLike } from './opentelemetry.js';
export { openTelemetryHooks } from './opentelemetry.js';
export type { ElectorOptions, ResolvedElectorOptions } from './options.js';
export { ELECTOR_DEFAULTS } from './options.js';
export type { LeaderRow, LeaderTable, LeaderTableOptions } from './schema.js';
export { createLeaderTable, DEFAULT_TABLE_NAME, riverLeader } from './schema.js';
export type {
  ElectorHooks,
  ElectorStats,
  LeaderDatabase,
  LeaderInfo,
  LeaderRun,
  LeadershipEvent,
  LeadershipListener,
  LeaderTask,
  Lease,
  Logger,
  LossReason,
} from './types.js';
export type { Clock } from './util/clock.js';
export { systemClock } from './util/clock.js';
