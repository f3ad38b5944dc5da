// pgferry's public entry point. Explicit exports only.
// The queue API: the public half of the queue's door, listed once in
// src/queue/public.ts (its only `export *`; see test/queue/door.test.ts).
export * from './queue/public.js';
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
