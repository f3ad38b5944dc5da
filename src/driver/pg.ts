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
import { quoteIdent } from './quote.js';
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
    this.poolRunner = runner(this.pool);
    const clientConfig: pg.ClientConfig = options.pool
      ? { ...(options.pool.options as pg.ClientConfig) }
      : { ...(connectionString ? { connectionString } : {}), ...options.poolConfig };
    this.listener = new PgListener(clientConfig, this.logger, options.listenReconnectDelayMs ?? 100);
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

/**
 * One dedicated connection carrying every LISTEN of a driver. It reconnects
 * with backoff when the connection drops and re-issues the LISTENs; handlers
 * are called with the payload (undefined for an empty payload).
 */
class PgListener {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly handlers = new Map<string, Set<NotificationHandler>>();
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly logger: Logger,
    private readonly reconnectDelayMs: number,
  ) {}

  async listen(channel: string, handler: NotificationHandler): Promise<Subscription> {
    if (this.closed) throw new Error('driver is closed');
    let set = this.handlers.get(channel);
    const first = !set;
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(handler);
    if (first) {
      try {
        const client = await this.connection();
        await client.query(`LISTEN ${quoteIdent(channel)}`);
      } catch (err) {
        set.delete(handler);
        if (set.size === 0) this.handlers.delete(channel);
        throw mapError(err);
      }
    }
    return {
      close: async () => {
        const s = this.handlers.get(channel);
        if (!s || !s.delete(handler) || s.size > 0) return;
        this.handlers.delete(channel);
        if (this.client && !this.closed) {
          await this.client.query(`UNLISTEN ${quoteIdent(channel)}`).catch(() => undefined);
        }
      },
    };
  }

  private connection(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    if (!this.connecting) {
      this.connecting = this.open().finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client(this.config);
    client.on('notification', (msg) => {
      const set = this.handlers.get(msg.channel);
      if (!set) return;
      for (const h of set) {
        try {
          h(msg.payload === '' ? undefined : msg.payload);
        } catch (err) {
          this.logger.error({ err }, 'pgferry: notification handler threw');
        }
      }
    });
    client.on('error', (err) => {
      this.logger.warn({ err }, 'pgferry: LISTEN connection lost');
      this.dropClient(client);
    });
    client.on('end', () => this.dropClient(client));
    await client.connect();
    if (this.closed) {
      await client.end();
      throw new Error('driver is closed');
    }
    this.client = client;
    return client;
  }

  private dropClient(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => undefined);
    if (!this.closed && this.handlers.size > 0) this.scheduleReconnect(this.reconnectDelayMs);
  }

  private scheduleReconnect(delay: number): void {
    if (this.reconnectTimer || this.closed) return;
    this.reconnectTimer = setTimeout(async () => {
      this.reconnectTimer = undefined;
      try {
        const client = await this.connection();
        for (const channel of this.handlers.keys()) {
          await client.query(`LISTEN ${quoteIdent(channel)}`);
        }
        // Whatever was sent while we were away is lost: wake every handler once
        // so consumers re-check instead of waiting for the next notification.
        for (const set of this.handlers.values()) for (const h of set) h(undefined);
      } catch (err) {
        this.logger.warn({ err }, 'pgferry: LISTEN reconnect failed, retrying');
        this.scheduleReconnect(Math.min(delay * 2, 5000));
      }
    }, delay);
    this.reconnectTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.handlers.clear();
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    if (client) await client.end().catch(() => undefined);
  }
}
