import { markNative } from './types.js';
import type * as D from './types.js';
import { DedicatedListener } from './listener.js';
import { parseArrayLiteral, toTextParams } from './text-params.js';
import { ConnectionError, InvalidArgumentError, mapError } from '../errors.js';
import {
  resolveDeadlines,
  statementDeadline,
  withDeadline,
  queryTimeoutError,
  type DeadlineOptions,
} from './deadlines.js';
import { ListenGuard, type PoolerOptions } from './pooler.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';

/*
 * The postgres.js driver. `postgres` is an optional peer dependency, so this
 * module never imports it at load time: the caller passes a `sql` instance
 * (typed structurally below, which a real postgres.js `Sql` satisfies), or
 * the package is imported on first use when a connection string is given.
 */

/** What postgres.js returns from a query: an array of rows with a command tag. */
export interface PostgresJsRowList extends ReadonlyArray<object> {
  readonly count?: number | null;
  readonly command?: string;
}

/** The part of a postgres.js `Sql` or `TransactionSql` pgferry uses. */
export interface PostgresJsQueryable {
  unsafe(
    query: string,
    parameters?: never[],
    options?: { prepare?: boolean },
  ): PromiseLike<PostgresJsRowList> & { cancel?(): unknown };
  typed(value: never, oid: number): unknown;
}

/** The part of a postgres.js `Sql` instance pgferry uses. */
export interface PostgresJsSql extends PostgresJsQueryable {
  begin(fn: (tx: PostgresJsQueryable) => Promise<unknown>): Promise<unknown>;
  end(options?: { timeout?: number | null }): Promise<void>;
  readonly options: object;
}

export interface PostgresJsDriverOptions extends DeadlineOptions, PoolerOptions {
  /** An existing postgres.js instance. pgferry never ends an instance it did not create. */
  sql?: PostgresJsSql;
  /** Connection string; otherwise `DATABASE_URL`, otherwise postgres.js's own `PG*` handling. */
  connectionString?: string;
  /** Extra postgres.js options when pgferry creates the instance (`pooler: 'transaction'` adds `prepare: false`). */
  postgresOptions?: Record<string, unknown>;
  /** Pool size when pgferry creates the instance. Default 10. */
  maxConnections?: number;
  logger?: Logger;
  /** First delay before re-establishing a dropped LISTEN connection. Default 100. */
  listenReconnectDelayMs?: number;
}

type PostgresFactory = (
  url?: string | Record<string, unknown>,
  options?: Record<string, unknown>,
) => PostgresJsSql;

/** OID of Postgres's `unknown` pseudo-type: the server infers the real type, as for node-postgres's untyped text. */
const UNKNOWN_OID = 705;
/** postgres.js's own (non-SQLSTATE) codes for a lost or closed connection. */
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);

function mapPostgresJsError(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) {
    return new ConnectionError((err as Error).message, { cause: err });
  }
  return mapError(err);
}

async function loadPostgres(): Promise<PostgresFactory> {
  try {
    const mod = await import('postgres');
    return mod.default as unknown as PostgresFactory;
  } catch (err) {
    throw new InvalidArgumentError(
      'the postgres.js driver needs the `postgres` package: npm install postgres (or pass your own `sql` instance)',
      { cause: err },
    );
  }
}

/** Refuses instances whose transforms would rename or rewrite the columns pgferry reads. */
function checkNoTransforms(sql: PostgresJsSql): void {
  const transform = (sql.options as { transform?: Record<string, unknown> }).transform ?? {};
  for (const key of ['column', 'value', 'row'] as const) {
    const t = transform[key] as { from?: unknown } | undefined;
    if (t?.from) {
      throw new InvalidArgumentError(
        `pgferry needs a postgres.js instance without a ${key} transform (it reads columns by their SQL names); create a separate instance for pgferry`,
      );
    }
  }
}

/**
 * postgres.js has no statement timeout of its own: the deadline races the
 * query, sends a cancel request at expiry, and reports it to `onTimeout`
 * (a transaction gives up on its connection then).
 */
function runner(
  target: PostgresJsQueryable,
  allowPrepare: boolean,
  queryTimeoutMs: number,
  onTimeout: (err: unknown) => void = () => undefined,
): D.Queryable {
  return markNative({
    async query<R>(...[text, params = [], options]: D.QueryArgs): Promise<D.QueryResult<R>> {
      // Text sent as `unknown`: the server infers each type (see text-params.ts).
      const values = toTextParams(params).map((v) =>
        v === null ? null : target.typed(v as never, UNKNOWN_OID),
      );
      try {
        const pending = target.unsafe(text, values as never[], {
          prepare: allowPrepare && options?.prepare === true,
        });
        const deadline = statementDeadline(queryTimeoutMs, options?.timeoutExtraMs);
        const res = await withDeadline(pending, deadline, () => {
          Promise.resolve(pending.cancel?.()).catch(() => undefined);
          onTimeout(queryTimeoutError(deadline));
        });
        return { rows: Array.from(res) as R[], rowCount: res.count ?? null };
      } catch (err) {
        throw mapPostgresJsError(err);
      }
    },
  });
}

/** A driver on postgres.js (`postgres` on npm). */
export class PostgresJsDriver implements D.Driver {
  readonly name = 'postgres';
  private readonly sqlReady: Promise<PostgresJsSql>;
  private readonly ownsSql: boolean;
  private readonly logger: Logger;
  private readonly listener: PostgresJsListener;
  private readonly queryTimeoutMs: number;
  private readonly listenGuard: ListenGuard;
  private closing: Promise<void> | undefined;

  constructor(options: PostgresJsDriverOptions = {}) {
    this.logger = options.logger ?? silentLogger;
    const deadlines = resolveDeadlines(options);
    this.queryTimeoutMs = deadlines.queryTimeoutMs;
    this.ownsSql = !options.sql;
    let factory: Promise<PostgresFactory> | undefined;
    const getFactory = (): Promise<PostgresFactory> => (factory ??= loadPostgres());
    if (options.sql) {
      checkNoTransforms(options.sql);
      this.sqlReady = Promise.resolve(options.sql);
    } else {
      const url = options.connectionString ?? process.env.DATABASE_URL;
      const config: Record<string, unknown> = {
        max: options.maxConnections ?? 10,
        // postgres.js counts both in seconds (fractions allowed); 0 disables.
        connect_timeout: deadlines.connectTimeoutMs / 1000,
        keep_alive: deadlines.keepAliveMs / 1000,
        onnotice: (notice: unknown) => this.logger.debug({ notice }, 'pgferry: notice'),
        // A transaction pooler hands each transaction to any server session,
        // where a statement prepared on another is unknown.
        ...(options.pooler === 'transaction' ? { prepare: false } : {}),
        ...options.postgresOptions,
        types: { ...ARRAY_TYPES, ...(options.postgresOptions?.types as object | undefined) },
      };
      this.sqlReady = getFactory().then((postgres) =>
        url ? postgres(url, config) : postgres(config),
      );
    }
    // Swallow here; every caller awaits sqlReady and sees the error itself.
    this.sqlReady.catch(() => undefined);
    this.listenGuard = new ListenGuard(options, this.logger);
    const listenUrl = options.listenConnectionString;
    this.listener = new PostgresJsListener(
      async () => {
        const postgres = await getFactory();
        // The direct URL replaces the instance's (pooled) host, port and credentials.
        if (listenUrl) return { postgres, options: {}, url: listenUrl };
        const sql = await this.sqlReady;
        return { postgres, options: sql.options };
      },
      this.logger,
      options.listenReconnectDelayMs ?? 100,
    );
  }

  /** The postgres.js instance (created on first use when pgferry owns it). */
  sql(): Promise<PostgresJsSql> {
    return this.sqlReady;
  }

  async query<R = D.Row>(...[text, params, options]: D.QueryArgs): Promise<D.QueryResult<R>> {
    const sql = await this.sqlReady;
    return runner(sql, preparesAllowed(sql), this.queryTimeoutMs).query<R>(text, params, options);
  }

  async transaction<T>(fn: (tx: D.Queryable) => Promise<T>): Promise<T> {
    const sql = await this.sqlReady;
    const allow = preparesAllowed(sql);
    const ms = this.queryTimeoutMs;
    // A statement that timed out leaves its connection busy, so postgres.js's
    // ROLLBACK would wait behind it: give up on the transaction at once
    // (the server rolls it back when the connection goes). BEGIN itself gets
    // the same deadline.
    let giveUp!: (err: unknown) => void;
    const gaveUp = new Promise<never>((_, reject) => (giveUp = reject));
    let started = false;
    const begin = sql.begin((tx: PostgresJsQueryable) => {
      started = true;
      return fn(runner(tx, allow, ms, giveUp));
    });
    const beginTimer =
      ms > 0 ? setTimeout(() => !started && giveUp(queryTimeoutError(ms)), ms) : undefined;
    try {
      return (await Promise.race([begin, gaveUp])) as T;
    } catch (err) {
      begin.catch(() => undefined);
      throw mapPostgresJsError(err);
    } finally {
      clearTimeout(beginTimer);
    }
  }

  listen(channel: string, onNotification: D.NotificationHandler): Promise<D.Subscription> {
    const refused = this.listenGuard.refusal();
    if (refused) return Promise.reject(refused);
    return this.listener.listen(channel, onNotification);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.listener.close();
      if (this.ownsSql) {
        const sql = await this.sqlReady.catch(() => undefined);
        await sql?.end({ timeout: 5 });
      }
    })();
    return this.closing;
  }
}

/*
 * postgres.js's array parser reads a NULL element as the string 'NULL' (and
 * NaN for numbers). On instances pgferry creates, the common array types are
 * parsed here instead, as node-postgres parses them. (Registering both a
 * parser and a serializer stops postgres.js from replacing them when it
 * fetches array types; parameters are sent as untyped text, so the
 * serializer is never used for them.)
 */
const num = (s: string): number => Number(s);
const text = (s: string): string => s;
const ARRAY_ELEMENTS: [string, number, (s: string) => unknown][] = [
  ['bool', 1000, (s) => s === 't'],
  ['int2', 1005, num],
  ['int4', 1007, num],
  ['int8', 1016, text],
  ['float4', 1021, num],
  ['float8', 1022, num],
  ['numeric', 1231, text],
  ['text', 1009, text],
  ['varchar', 1015, text],
  ['json', 199, (s) => JSON.parse(s)],
  ['jsonb', 3807, (s) => JSON.parse(s)],
  ['timestamp', 1115, (s) => new Date(s)],
  ['timestamptz', 1185, (s) => new Date(s)],
];
const ARRAY_TYPES = Object.fromEntries(
  ARRAY_ELEMENTS.map(([name, oid, element]) => [
    `pgferry_${name}_array`,
    {
      to: oid,
      from: [oid],
      parse: (s: string) => parseArrayLiteral(s, element),
      serialize: (x: unknown) => x,
    },
  ]),
);

/** An instance made with `prepare: false` (for PgBouncer in transaction mode) never prepares. */
function preparesAllowed(sql: PostgresJsSql): boolean {
  return (sql.options as { prepare?: unknown }).prepare !== false;
}

/** The LISTEN connection of the postgres.js driver: its own one-connection instance. */
class PostgresJsListener extends DedicatedListener<PostgresJsSql> {
  constructor(
    private readonly base: () => Promise<{
      postgres: PostgresFactory;
      options: object;
      url?: string;
    }>,
    logger: Logger,
    reconnectDelayMs: number,
  ) {
    super(logger, reconnectDelayMs);
  }

  protected async openConnection(): Promise<PostgresJsSql> {
    const { postgres, options, url } = await this.base();
    const config = {
      ...(options as Record<string, unknown>),
      max: 1,
      idle_timeout: null,
      max_lifetime: null,
      fetch_types: false,
      onnotice: (notice: unknown) => this.logger.debug({ notice }, 'pgferry: notice'),
      onnotify: (channel: string, payload: string) =>
        this.dispatch(channel, payload === '' ? undefined : payload),
      // postgres.js reconnects on the next statement: only re-issue the LISTENs.
      onclose: () => this.lost(sql, false),
    };
    const sql: PostgresJsSql = url ? postgres(url, config) : postgres(config);
    return sql;
  }

  protected async run(sql: PostgresJsSql, text: string): Promise<unknown> {
    return await sql.unsafe(text);
  }

  protected end(sql: PostgresJsSql): Promise<void> {
    return sql.end({ timeout: 5 });
  }

  protected mapErr(err: unknown): unknown {
    return mapPostgresJsError(err);
  }
}
