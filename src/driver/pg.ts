import pg from 'pg';
import { createHash } from 'node:crypto';
import type {
  Driver,
  NotificationHandler,
  QueryOptions,
  QueryResult,
  Queryable,
  Subscription,
} from './types.js';
import { markNative } from './types.js';
import { DedicatedListener } from './listener.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { mapError } from '../errors.js';

export interface PgDriverOptions {
  /** Connection string; otherwise `DATABASE_URL`, otherwise libpq's `PG*` variables. */
  connectionString?: string;
  /** An existing pool to use. pgferry never ends a pool it did not create. */
  pool?: pg.Pool;
  /** Extra pool settings when pgferry creates the pool. */
  poolConfig?: pg.PoolConfig;
  /** Pool size when pgferry creates the pool. Default 10. */
  maxConnections?: number;
  logger?: Logger;
  /** First delay before re-establishing a dropped LISTEN connection. Default 100. */
  listenReconnectDelayMs?: number;
}

type PgQueryable = pg.Pool | pg.PoolClient;

/** Statement names are derived from the text, so a name always means one text on every connection. */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    if (statementNames.size > 5000) statementNames.clear();
    name = 'pf_' + createHash('sha1').update(text).digest('hex').slice(0, 24);
    statementNames.set(text, name);
  }
  return name;
}

function runner(target: PgQueryable): Queryable {
  return markNative({
    async query<R>(
      text: string,
      params: readonly unknown[] = [],
      options?: QueryOptions,
    ): Promise<QueryResult<R>> {
      try {
        const config: pg.QueryConfig = { text, values: [...params] };
        if (options?.prepare) config.name = statementName(text);
        const res = await target.query(config);
        return { rows: res.rows as R[], rowCount: res.rowCount ?? null };
      } catch (err) {
        throw mapError(err);
      }
    },
  });
}

/** The default driver, on node-postgres (`pg`). */
export class PgDriver implements Driver {
  readonly name = 'pg';
  readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly logger: Logger;
  private readonly poolRunner: Queryable;
  private readonly listener: PgListener;
  private closed = false;

  constructor(options: PgDriverOptions = {}) {
    this.logger = options.logger ?? silentLogger;
    const connectionString = options.connectionString ?? process.env.DATABASE_URL;
    if (options.pool) {
      this.pool = options.pool;
      this.ownsPool = false;
    } else {
      this.pool = new pg.Pool({
        ...(connectionString ? { connectionString } : {}),
        max: options.maxConnections ?? 10,
        ...options.poolConfig,
      });
      this.ownsPool = true;
    }
    // An idle client that errors (server restart) must not crash the process.
    this.pool.on('error', (err) => this.logger.warn({ err }, 'pgferry: idle connection error'));
    // Nor one that breaks while checked out (pg-pool removes its idle listener
    // then): its queries reject with the error, which is what callers handle.
    this.pool.on('connect', (client) =>
      client.on('error', (err) => this.logger.debug({ err }, 'pgferry: connection error')),
    );
    this.poolRunner = runner(this.pool);
    const clientConfig: pg.ClientConfig = options.pool
      ? { ...(options.pool.options as pg.ClientConfig) }
      : { ...(connectionString ? { connectionString } : {}), ...options.poolConfig };
    this.listener = new PgListener(
      clientConfig,
      this.logger,
      options.listenReconnectDelayMs ?? 100,
    );
  }

  query<R = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<R>> {
    return this.poolRunner.query<R>(text, params, options);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw mapError(err);
    }
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await fn(runner(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw mapError(err);
    } finally {
      client.release(broken);
    }
  }

  listen(channel: string, onNotification: NotificationHandler): Promise<Subscription> {
    return this.listener.listen(channel, onNotification);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener.close();
    if (this.ownsPool) await this.pool.end();
  }
}

/** The LISTEN connection of the pg driver: a plain `pg.Client` outside the pool. */
class PgListener extends DedicatedListener<pg.Client> {
  constructor(
    private readonly config: pg.ClientConfig,
    logger: Logger,
    reconnectDelayMs: number,
  ) {
    super(logger, reconnectDelayMs);
  }

  protected async openConnection(): Promise<pg.Client> {
    const client = new pg.Client(this.config);
    client.on('notification', (msg) =>
      this.dispatch(msg.channel, msg.payload === '' ? undefined : msg.payload),
    );
    client.on('error', (err) => {
      this.logger.debug({ err }, 'pgferry: LISTEN connection error');
      this.lost(client, true);
    });
    client.on('end', () => this.lost(client, true));
    await client.connect();
    return client;
  }

  protected run(client: pg.Client, sql: string): Promise<unknown> {
    return client.query(sql);
  }

  protected end(client: pg.Client): Promise<void> {
    return client.end();
  }

  protected mapErr(err: unknown): unknown {
    return mapError(err);
  }
}
