import type { Driver, Executor, Queryable } from '../driver/types.js';
import { resolveDriver, type ConnectionOptions } from '../driver/resolve.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { checkSchemaName, migrate, type MigrateResult } from '../migrate/migrator.js';
import { QueueEngine } from './engine/index.js';
import { checkLockTimeout } from './lock-timeout.js';
import type { TxOption } from './types.js';

export interface QueueClientOptions extends ConnectionOptions {
  /**
   * How long delete, archive, set_vt (and their `…IfHeld` forms), purge and
   * drop wait for a lock another transaction holds before failing with
   * LockTimeoutError. Default 5000; 0 leaves the server's `lock_timeout`.
   */
  lockTimeoutMs?: number;
  /** Schema of the queue engine. Default `pgmq`. */
  schema?: string;
  /** pino-compatible logger. Default: silent. */
  logger?: Logger;
  /** The pooler in front of the database; 'transaction' turns off named prepared statements (see docs/deployment.md). Default 'none'. */
  pooler?: 'transaction' | 'session' | 'none';
  /** A direct (unpooled) URL for LISTEN when `pooler` is 'transaction'; without it consumers poll. */
  listenConnectionString?: string;
}

/**
 * What every section of QueueClient stands on: the driver, the schema, the
 * engine, and the executor of a call. QueueClient = this base + the
 * reliability section (reliability.ts) + the messaging, FIFO, topic and
 * notification sections (client.ts); each section checks arguments and
 * delegates to the feature modules.
 */
export abstract class QueueClientBase {
  readonly driver: Driver;
  readonly schema: string;
  readonly logger: Logger;
  /** The queue engine of this client's schema (its statements; see engine/index.ts). */
  readonly engine: QueueEngine;
  /** lock_timeout of the operations that wait on another transaction's lock (lock-timeout.ts). */
  readonly lockTimeoutMs: number;
  protected readonly ownsDriver: boolean;
  /** The quoted schema. */
  protected readonly s: string;

  constructor(options: QueueClientOptions = {}) {
    this.schema = checkSchemaName(options.schema ?? 'pgmq');
    this.logger = options.logger ?? silentLogger;
    this.lockTimeoutMs = checkLockTimeout(options.lockTimeoutMs);
    ({ driver: this.driver, owned: this.ownsDriver } = resolveDriver(options, this.logger));
    this.engine = new QueueEngine(this.schema, this.lockTimeoutMs);
    this.s = this.engine.s;
  }

  /** Installs or upgrades the queue engine in this client's schema. */
  migrate(): Promise<MigrateResult> {
    return migrate({
      driver: this.driver,
      components: ['queue'],
      schemas: { queue: this.schema },
      logger: this.logger,
    });
  }

  /** Runs `fn` in a transaction; pass the `tx` it gets to any method as `{ tx }`. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.driver.transaction(fn);
  }

  /** Closes the pool if this client made it. */
  async close(): Promise<void> {
    if (this.ownsDriver) await this.driver.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The executor of a call: the caller's transaction, or the pool. */
  protected x(options: TxOption): Executor {
    return options.tx ?? this.driver;
  }
}
