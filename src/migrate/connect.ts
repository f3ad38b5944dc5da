import type { Driver } from '../driver/types.js';
import { PgDriver } from '../driver/pg.js';
import type { Logger } from '../logger.js';

export interface ConnectOptions {
  /** Driver to run on; otherwise one is made from `connectionString` / `DATABASE_URL` / `PG*`. */
  driver?: Driver;
  connectionString?: string;
  /**
   * Statement deadline of the driver made here (not of a `driver` passed in).
   * Default 600000 (10 minutes): a migration may rebuild a large table or
   * wait for another migrator's lock; 0 disables.
   */
  queryTimeoutMs?: number;
}

/** The migrator's own statement deadline unless told otherwise. */
export const MIGRATE_QUERY_TIMEOUT_MS = 600_000;

/** Runs `fn` on the caller's driver, or on a one-connection driver it closes afterwards. */
export async function withDriver<T>(
  options: ConnectOptions,
  logger: Logger,
  fn: (driver: Driver) => Promise<T>,
): Promise<T> {
  const driver =
    options.driver ??
    new PgDriver({
      ...(options.connectionString ? { connectionString: options.connectionString } : {}),
      logger,
      maxConnections: 1,
      queryTimeoutMs: options.queryTimeoutMs ?? MIGRATE_QUERY_TIMEOUT_MS,
    });
  try {
    return await fn(driver);
  } finally {
    if (!options.driver) await driver.close();
  }
}
