// pgferry's public entry point. Explicit exports only.
export { QueueClient, TypedQueue, type QueueClientOptions } from './queue/index.js';
export {
  Consumer, // deprecated alias of QueueConsumer (docs/concepts.md)
  Delivery,
  QueueConsumer,
  type ConsumeMode,
  type ConsumeOptions,
} from './queue/index.js';
export {
  GROUP_HEADER,
  type GroupedReadMode,
  type GroupedReadOptions,
  type GroupedReadWithPollOptions,
} from './queue/index.js';
export type {
  SendBatchTopicOptions,
  SendTopicOptions,
  TopicBinding,
  TopicRoute,
  TopicSendResult,
} from './queue/index.js';
export {
  DEFAULT_THROTTLE_INTERVAL_MS,
  notifyChannel,
  type NotifyEvent,
  type NotifyThrottle,
} from './queue/index.js';
export type {
  CreateQueueOptions,
  Headers,
  Message,
  PopOptions,
  QueueInfo,
  QueueMetrics,
  MetricsOptions,
  ReadOptions,
  ReadWithPollOptions,
  SendBatchOptions,
  SendOptions,
  TxOption,
} from './queue/index.js';
export { MAX_QUEUE_NAME_LENGTH } from './queue/index.js';
// Partitions, dead letters, archive retention, fast metrics, maintenance.
export type {
  ArchiveRetention,
  ConvertArchiveOptions,
  CreatePartitionedQueueOptions,
  MaintenanceResult,
} from './queue/index.js';
export { MaintenanceScheduler, type MaintenanceSchedulerOptions } from './queue/index.js';
export {
  DEAD_LETTER_HEADERS,
  type DeadLetter,
  type DeadLetterFilterOptions,
  type DeadLetterOrigin,
  type DeadLetterPolicy,
  type ListDeadLettersOptions,
  type SetDeadLetterPolicyOptions,
} from './queue/index.js';
export type {
  Driver,
  Executor,
  ForeignQueryable,
  NotificationHandler,
  QueryOptions,
  QueryResult,
  Queryable,
  Subscription,
} from './driver/types.js';
export { PgDriver, type PgDriverOptions } from './driver/pg.js';
export type { PoolerMode, PoolerOptions } from './driver/pooler.js';
export {
  PostgresJsDriver,
  type PostgresJsDriverOptions,
  type PostgresJsQueryable,
  type PostgresJsRowList,
  type PostgresJsSql,
} from './driver/postgres.js';
export {
  PGliteDriver,
  type PGliteDriverOptions,
  type PGliteLike,
  type PGliteQueryOptionsLike,
  type PGliteResults,
  type PGliteTransactionLike,
} from './driver/pglite.js';
export {
  drizzleExecutor,
  kyselyExecutor,
  pgliteExecutor,
  postgresJsExecutor,
  prismaExecutor,
  type DrizzleLike,
  type DrizzleSqlTag,
  type KyselyLike,
  type PrismaLike,
} from './driver/adapters.js';
export {
  migrate,
  MIN_SERVER_VERSION_NUM,
  type AppliedMigration,
  type MigrateOptions,
  type MigrateResult,
  type SchemaNames,
} from './migrate/migrator.js';
export { installed, type InstalledComponent, type InstalledOptions } from './migrate/installed.js';
export type { ComponentName } from './migrate/components.js';
export {
  AbortedError,
  ConnectionError,
  DatabaseError,
  InvalidArgumentError,
  InvalidQueueNameError,
  LockTimeoutError,
  ConflictError,
  MigrationError,
  PgferryError,
  QueueNotFoundError,
  TimeoutError,
  type MigrationErrorCode,
} from './errors.js';
export { silentLogger, type Logger } from './logger.js';
// The bus layer lives in `pgferry/bus`; its error class is here too, so PF502 maps wherever it is raised.
export { BusLimitError, BusNotMemberError } from './bus/errors.js';
