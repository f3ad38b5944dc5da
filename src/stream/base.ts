import type { Driver, Executor, Queryable } from '../driver/types.js';
import { execute } from '../driver/types.js';
import { resolveDriver, type ConnectionOptions } from '../driver/resolve.js';
import type { PoolerOptions } from '../driver/pooler.js';
import { quoteIdent } from '../driver/quote.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { checkSchemaName, migrate, type MigrateResult } from '../migrate/migrator.js';
import { mapStreamError } from './errors.js';

export interface StreamClientOptions extends ConnectionOptions {
  /** Schema of the stream engine. Default `pgque`. */
  schema?: string;
  logger?: Logger;
}

/**
 * StreamClient's base: the driver and schema, the one way a statement of the
 * stream's SQL is run (`q`), migrate, transaction and close.
 */
export abstract class StreamClientBase {
  readonly driver: Driver;
  readonly schema: string;
  readonly logger: Logger;
  readonly connectionString: string | undefined;
  /** The pooler settings this client was made with (its Consumers' Tickers use them too). */
  readonly pooler: PoolerOptions;
  private readonly ownsDriver: boolean;
  /** The quoted schema, substituted for `@s@` in every statement. */
  protected readonly s: string;

  constructor(options: StreamClientOptions = {}) {
    this.schema = checkSchemaName(options.schema ?? 'pgque');
    this.s = quoteIdent(this.schema);
    this.logger = options.logger ?? silentLogger;
    this.connectionString = options.connectionString;
    this.pooler = {
      ...(options.pooler ? { pooler: options.pooler } : {}),
      ...(options.listenConnectionString
        ? { listenConnectionString: options.listenConnectionString }
        : {}),
    };
    ({ driver: this.driver, owned: this.ownsDriver } = resolveDriver(options, this.logger));
  }

  /** Installs or upgrades the stream engine in this client's schema. */
  migrate(): Promise<MigrateResult> {
    return migrate({
      driver: this.driver,
      components: ['stream'],
      schemas: { stream: this.schema },
      logger: this.logger,
    });
  }

  /** Runs `fn` in a transaction; pass the `tx` it gets to any method as `{ tx }`. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.driver.transaction(fn);
  }

  /** @internal Runs one statement of this client's SQL (`@s@` = the schema), mapping errors. */
  async q<R>(
    text: string,
    params: readonly unknown[] = [],
    tx?: Executor,
    prepare = false,
  ): Promise<R[]> {
    try {
      const res = await execute<R>(tx ?? this.driver, text.replaceAll('@s@', this.s), params, {
        prepare,
      });
      return res.rows;
    } catch (err) {
      throw mapStreamError(err);
    }
  }

  /** Runs a statement returning one integer flag `r`; true when it is 1. */
  protected async flag(
    text: string,
    params: readonly unknown[],
    tx?: Executor,
    prepare = false,
  ): Promise<boolean> {
    const rows = await this.q<{ r: number }>(text, params, tx, prepare);
    return rows[0]!.r === 1;
  }

  async close(): Promise<void> {
    if (this.ownsDriver) await this.driver.close();
  }
}
