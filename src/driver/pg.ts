import pg from 'pg';
import { createHash } from 'node:crypto';
import { markNative } from './types.js';
import type * as D from './types.js';
import { DedicatedListener } from './listener.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { ConnectionError, TimeoutError, mapError } from '../errors.js';
import {
  pgConnectionDeadlines,
  resolveDeadlines,
  statementDeadline,
  type DeadlineOptions,
} from './deadlines.js';
import type { PgPool, PgPoolClient, PgPoolConfig, PgQueryResult } from './pg-public.js';
import { ListenGuard, type PoolerOptions } from './pooler.js';

export interface PgDriverOptions extends DeadlineOptions, PoolerOptions {
  /** Connection string; otherwise `DATABASE_URL`, otherwise libpq's `PG*` variables. */
  connectionString?: string;
  /** An existing pool to use. pgferry never ends a pool it did not create. */
  pool?: PgPool;
  /** Extra pool settings when pgferry creates the pool. */
  poolConfig?: PgPoolConfig;
  /** Pool size when pgferry creates the pool. Default 10. */
  maxConnections?: number;
  logger?: Logger;
  /** First delay before re-establishing a dropped LISTEN connection. Default 100. */
  listenReconnectDelayMs?: number;
}

/** SQLSTATE classes after which a session is given up rather than reused (see `sessionSurvives`). */
const DISCARD_CLASSES = new Set(['08', '0A', '26', '53', '57', '58', 'XX']);

/**
 * Whether a statement error may leave its connection usable. `pool.query`
 * discards the connection after any error, so an ordinary SQL error (a
 * constraint, a lock timeout, a `RAISE`) cost a reconnect and the
 * re-preparation of every statement on the next one. Candidates: errors the
 * server reported for the statement. Not: anything that is not a server
 * error (a client-side timeout, with the statement possibly still running; a
 * broken socket), FATAL/PANIC, a lost or ending session (classes 08, 57 other
 * than a cancelled statement 57014, 58, XX, 53, 25P03), an aborted
 * transaction block (25P02), and a prepared statement the session may no
 * longer run as cached (0A000 "cached plan must not change result type",
 * 26000), which the next connection prepares afresh. A candidate is kept
 * only once the server has said it is ready and idle (`pooledQuery`).
 */
export function sessionSurvives(err: unknown): boolean {
  // Shaped like pg's DatabaseError (a pool passed in may come from another copy of pg).
  const { code, severity } = (err ?? {}) as { code?: unknown; severity?: unknown };
  if (typeof severity !== 'string' || typeof code !== 'string') return false;
  if (severity === 'FATAL' || severity === 'PANIC') return false;
  if (!/^[0-9A-Z]{5}$/.test(code) || code === '25P03' || code === '25P02') return false;
  return code === '57014' || !DISCARD_CLASSES.has(code.slice(0, 2));
}

/** How long a connection whose statement failed may take to report ready before it is given up. */
const READY_WAIT_MS = 5_000;

type TxStatusClient = pg.PoolClient & {
  getTransactionStatus?(): string | null;
  readyForQuery?: boolean;
};

/**
 * One statement on a pooled connection, as `pool.query` runs it (callback
 * forms, an 'error' listener for the statement's duration, one settlement
 * however often pg calls back), except that the connection goes back to the
 * pool after an error that leaves its session usable: the server must then
 * report ready (it never does after a FATAL error) with no transaction open.
 * A connection left inside a transaction (a `BEGIN` sent as a statement) is
 * given up too.
 */
function pooledQuery(pool: PgPool, config: pg.QueryConfig): Promise<PgQueryResult> {
  const cbPool = pool as unknown as pg.Pool;
  return new Promise((resolve, reject) => {
    cbPool.connect((connectErr, got, release) => {
      if (connectErr || !got) {
        reject(connectErr ?? new ConnectionError('pgferry: the pool returned no connection'));
        return;
      }
      const client = got as TxStatusClient;
      let answered = false;
      let released = false;
      let timer: NodeJS.Timeout | undefined;
      const status = (): string | null | undefined => {
        try {
          return client.getTransactionStatus?.();
        } catch {
          return undefined; // a client that cannot tell (older pg-native)
        }
      };
      const giveBack = (destroy?: Error | boolean): void => {
        if (released) return;
        released = true;
        clearTimeout(timer);
        client.removeListener('error', onError);
        client.removeListener('drain', onReady);
        release(destroy);
      };
      const onError = (err: Error): void => {
        giveBack(err);
        if (!answered) {
          answered = true;
          reject(err);
        }
      };
      // After an error: reused only when the server says ready and idle.
      const onReady = (): void => giveBack(status() !== 'I');
      client.once('error', onError);
      try {
        client.query(config, (err: Error | null, res: pg.QueryResult) => {
          if (answered) return;
          answered = true;
          if (!err) {
            const s = status();
            giveBack(s !== undefined && s !== null && s !== 'I');
            resolve(res);
            return;
          }
          reject(err);
          if (!sessionSurvives(err)) giveBack(err);
          else if (client.readyForQuery) onReady();
          else {
            client.once('drain', onReady);
            timer = setTimeout(() => giveBack(err), READY_WAIT_MS);
            timer.unref();
          }
        });
      } catch (err) {
        onError(err instanceof Error ? err : new ConnectionError(String(err), { cause: err }));
      }
    });
  });
}

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

/** How a runner sends one statement: through a pool, or on a checked-out client. */
type Send = (config: pg.QueryConfig) => Promise<PgQueryResult>;

function runner(send: Send, queryTimeoutMs: number, named = true): D.Queryable {
  return markNative({
    async query<R>(...[text, params = [], options]: D.QueryArgs): Promise<D.QueryResult<R>> {
      try {
        const config: pg.QueryConfig & { query_timeout?: number } = { text, values: [...params] };
        if (options?.prepare && named) config.name = statementName(text);
        // pg's per-query read timeout; the connection is discarded on it.
        const deadline = statementDeadline(queryTimeoutMs, options?.timeoutExtraMs);
        if (deadline > 0) config.query_timeout = deadline;
        const res = await send(config);
        return { rows: res.rows as R[], rowCount: res.rowCount ?? null };
      } catch (err) {
        throw mapError(err);
      }
    },
  });
}

/** The default driver, on node-postgres (`pg`). */
export class PgDriver implements D.Driver {
  readonly name = 'pg';
  readonly pool: PgPool;
  private readonly ownsPool: boolean;
  private readonly logger: Logger;
  private readonly poolRunner: D.Queryable;
  private readonly listener: PgListener;
  private readonly queryTimeoutMs: number;
  private readonly named: boolean;
  private readonly listenGuard: ListenGuard;
  private readonly listenConfig: pg.ClientConfig;
  private readonly listenReconnectDelayMs: number;
  private closed = false;

  constructor(options: PgDriverOptions = {}) {
    this.logger = options.logger ?? silentLogger;
    const connectionString = options.connectionString ?? process.env.DATABASE_URL;
    const deadlines = resolveDeadlines(options);
    this.queryTimeoutMs = deadlines.queryTimeoutMs;
    // Set on each client, not on the pool: the pool's own connectionTimeoutMillis
    // would also bound the wait for a free pooled connection (busy, not down).
    const connectionConfig: pg.ClientConfig = {
      ...(connectionString ? { connectionString } : {}),
      ...pgConnectionDeadlines(deadlines),
      ...options.poolConfig,
    };
    if (options.pool) {
      this.pool = options.pool;
      this.ownsPool = false;
    } else {
      const { connectionTimeoutMillis, ...rest } = connectionConfig;
      // A connectionTimeoutMillis (or Client class) in poolConfig is the caller's choice.
      const own =
        options.poolConfig?.connectionTimeoutMillis === undefined && !options.poolConfig?.Client;
      this.pool = new pg.Pool({
        max: options.maxConnections ?? 10,
        ...rest,
        ...(own
          ? { Client: clientWithConnectTimeout(connectionTimeoutMillis ?? 0) }
          : { connectionTimeoutMillis }),
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
    // A transaction pooler hands each transaction to any server session: a
    // statement prepared on one is unknown on the next, and LISTEN registers on
    // a session that then serves other clients and never delivers here.
    const pooled = options.pooler === 'transaction';
    this.named = !pooled;
    this.listenGuard = new ListenGuard(options, this.logger);
    // Its own pool is a pg.Pool: statements go through pooledQuery (a failed
    // statement's connection is kept when its session survives). A pool passed
    // in may be any object shaped like one: pool.query, as it documents.
    const pool = this.pool;
    this.poolRunner = runner(
      this.ownsPool ? (config) => pooledQuery(pool, config) : (config) => pool.query(config),
      this.queryTimeoutMs,
      this.named,
    );
    const clientConfig: pg.ClientConfig = options.listenConnectionString
      ? { ...connectionConfig, connectionString: options.listenConnectionString }
      : options.pool
        ? { ...(options.pool.options as pg.ClientConfig) }
        : connectionConfig;
    this.listenConfig = clientConfig;
    this.listenReconnectDelayMs = options.listenReconnectDelayMs ?? 100;
    this.listener = this.newListener();
  }

  /** A LISTEN connection with this driver's settings (its own, or a process-wide shared one). */
  private newListener(): PgListener {
    return new PgListener(
      this.listenConfig,
      this.logger,
      this.listenReconnectDelayMs,
      this.queryTimeoutMs,
    );
  }

  listenEndpoint(): D.ListenEndpoint | undefined {
    if (this.listenGuard.unavailable) return undefined;
    const key = settingsDigest({ config: this.listenConfig, timeout: this.queryTimeoutMs });
    if (key === undefined) return undefined;
    return {
      key,
      open: () => this.newListener(),
    };
  }

  query<R = D.Row>(...[text, params, options]: D.QueryArgs): Promise<D.QueryResult<R>> {
    return this.poolRunner.query<R>(text, params, options);
  }

  async transaction<T>(fn: (tx: D.Queryable) => Promise<T>): Promise<T> {
    let client: PgPoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw mapError(err);
    }
    let broken = false;
    const tx = runner((config) => client.query(config), this.queryTimeoutMs, this.named);
    try {
      await tx.query('BEGIN');
      const result = await fn(tx);
      await tx.query('COMMIT');
      return result;
    } catch (err) {
      const mapped = mapError(err);
      // A timed-out connection still runs (or is stuck in) the statement: a
      // ROLLBACK would wait behind it. Discarding the connection rolls back.
      if (mapped instanceof TimeoutError && mapped.sqlState === undefined) broken = true;
      else {
        try {
          await tx.query('ROLLBACK');
        } catch {
          broken = true;
        }
      }
      throw mapped;
    } finally {
      client.release(broken);
    }
  }

  listen(channel: string, onNotification: D.NotificationHandler): Promise<D.Subscription> {
    const refused = this.listenGuard.refusal();
    if (refused) return Promise.reject(refused);
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
 * A digest of connection settings, equal for equal settings whatever the
 * order of their keys; undefined when a function is among them (a password
 * callback, a stream factory: two of them cannot be compared).
 */
function settingsDigest(settings: object): string | undefined {
  let comparable = true;
  const text = JSON.stringify(settings, (_key, value: unknown) => {
    if (typeof value === 'function') comparable = false;
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      return Object.fromEntries(
        Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
      );
    }
    return value;
  });
  if (!comparable) return undefined;
  return createHash('sha256').update(text).digest('hex');
}

/** pg.Client with a fixed connect timeout (so the pool's checkout wait stays unbounded by it). */
function clientWithConnectTimeout(ms: number): typeof pg.Client {
  return class extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super({
        ...(typeof config === 'string' ? { connectionString: config } : config),
        connectionTimeoutMillis: ms,
      });
    }
  };
}

/** The LISTEN connection of the pg driver: a plain `pg.Client` outside the pool. */
class PgListener extends DedicatedListener<pg.Client> {
  constructor(
    private readonly config: pg.ClientConfig,
    logger: Logger,
    reconnectDelayMs: number,
    private readonly queryTimeoutMs: number,
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
    // LISTEN/UNLISTEN get the statement deadline too (a frozen server must not hang them).
    const config: pg.QueryConfig & { query_timeout?: number } = { text: sql };
    if (this.queryTimeoutMs > 0) config.query_timeout = this.queryTimeoutMs;
    return client.query(config);
  }

  protected end(client: pg.Client): Promise<void> {
    return client.end();
  }

  protected mapErr(err: unknown): unknown {
    return mapError(err);
  }
}
