import type { Driver } from './types.js';
import { PgDriver } from './pg.js';
import type { Logger } from '../logger.js';
import type { DeadlineOptions } from './deadlines.js';

/** The connection options every pgferry client accepts. */
export interface ConnectionOptions extends DeadlineOptions {
  /** A driver to use; the client never closes a driver it was given. */
  driver?: Driver;
  /** Connection string; otherwise `DATABASE_URL`, otherwise libpq's `PG*` variables. */
  connectionString?: string;
  /** Pool size when the client makes its own pool. Default 10. */
  maxConnections?: number;
  /** The pooler in front of the database (`PgDriverOptions.pooler`). Default 'none'. */
  pooler?: 'transaction' | 'session' | 'none';
  /** A direct URL for LISTEN when `pooler` is 'transaction' (`PgDriverOptions.listenConnectionString`). */
  listenConnectionString?: string;
}

/**
 * The deadlines apply to the pool made here; a driver passed in keeps its own
 * (set them on that driver).
 *
 * The caller's driver, or a new `pg` pool from the connection options.
 * `owned` says whether the client made it (and so must close it).
 */
export function resolveDriver(
  options: ConnectionOptions,
  logger: Logger,
): { driver: Driver; owned: boolean } {
  if (options.driver) return { driver: options.driver, owned: false };
  return {
    driver: new PgDriver({
      ...(options.connectionString ? { connectionString: options.connectionString } : {}),
      ...(options.maxConnections ? { maxConnections: options.maxConnections } : {}),
      ...(options.connectTimeoutMs !== undefined
        ? { connectTimeoutMs: options.connectTimeoutMs }
        : {}),
      ...(options.queryTimeoutMs !== undefined ? { queryTimeoutMs: options.queryTimeoutMs } : {}),
      ...(options.keepAliveMs !== undefined ? { keepAliveMs: options.keepAliveMs } : {}),
      ...(options.pooler ? { pooler: options.pooler } : {}),
      ...(options.listenConnectionString
        ? { listenConnectionString: options.listenConnectionString }
        : {}),
      logger,
    }),
    owned: true,
  };
}
