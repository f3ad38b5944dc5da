import type { Driver } from './types.js';
import { PgDriver } from './pg.js';
import type { Logger } from '../logger.js';

/** The connection options every pgferry client accepts. */
export interface ConnectionOptions {
  /** A driver to use; the client never closes a driver it was given. */
  driver?: Driver;
  /** Connection string; otherwise `DATABASE_URL`, otherwise libpq's `PG*` variables. */
  connectionString?: string;
  /** Pool size when the client makes its own pool. Default 10. */
  maxConnections?: number;
}

/**
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
      logger,
    }),
    owned: true,
  };
}
