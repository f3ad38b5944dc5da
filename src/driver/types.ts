/**
 * The driver seam: the one small interface every Postgres client library is
 * adapted to. pgferry's clients only ever talk to these types, so `pg`,
 * postgres.js and PGlite are interchangeable, and a caller's own transaction
 * (any object with a compatible `query`) can be passed to every operation.
 */

/** A row set as returned by a query. */
export interface QueryResult<R> {
  rows: R[];
  /** Rows affected (INSERT/UPDATE/DELETE) or returned; null when unknown. */
  rowCount: number | null;
}

export interface QueryOptions {
  /**
   * Hint that this statement is on a hot path and worth preparing on the
   * connection (server-side prepared statement). Drivers may ignore it.
   */
  prepare?: boolean;
  /**
   * Milliseconds added to the driver's query deadline for this statement: a
   * long-poll waits in the database on purpose (see driver/deadlines.ts).
   */
  timeoutExtraMs?: number;
}

/** Anything that can run a parameterised statement: a pool, a connection, a transaction. */
export interface Queryable {
  query<R = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<R>>;
}

/** A result row when the caller names no type. */
export type Row = Record<string, unknown>;

/** The arguments of `Queryable.query`, for its implementations: `(text, params?, options?)`. */
export type QueryArgs = Parameters<Queryable['query']>;

/** A live LISTEN on one channel; `close()` stops it. */
export interface Subscription {
  close(): Promise<void>;
}

export type NotificationHandler = (payload: string | undefined) => void;

export interface Driver extends Queryable {
  /** Short name of the implementation (`pg`, `postgres`, `pglite`). */
  readonly name: string;
  /**
   * Runs `fn` inside BEGIN … COMMIT on one connection; rolls back and rethrows
   * when `fn` throws. Nested calls on the `tx` object are not supported.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * LISTEN on `channel` over a connection dedicated to notifications (never a
   * pooled query connection), reconnecting on failure. Resolves once the
   * LISTEN is active.
   */
  listen(channel: string, onNotification: NotificationHandler): Promise<Subscription>;
  /** Closes every connection the driver opened. Idempotent. */
  close(): Promise<void>;
  /**
   * Optional: the settings of this driver's LISTEN connection, so that
   * several drivers of one process can share one LISTEN connection (the bus
   * does). Undefined when LISTEN is unavailable or the settings cannot be
   * compared (a function among them).
   */
  listenEndpoint?(): ListenEndpoint | undefined;
}

/** Opens LISTEN connections with a driver's settings (see `Driver.listenEndpoint`). */
export interface ListenEndpoint {
  /**
   * Equal for two drivers whose LISTEN connections would be opened with the
   * same settings (server, database, role, options): they hear the same
   * notifications. A digest, never the settings themselves.
   */
  readonly key: string;
  /** A new dedicated LISTEN connection (opened lazily, reconnecting), owned by the caller. */
  open(): Listener;
}

/** A dedicated LISTEN connection on its own, outside any driver. */
export interface Listener {
  listen(channel: string, onNotification: NotificationHandler): Promise<Subscription>;
  close(): Promise<void>;
}

/**
 * A transaction handle supplied by the caller. Either one of ours, or a
 * foreign client whose `query(text, values)` resolves to `{ rows }` — a
 * node-postgres `Client`/`PoolClient` fits as is; other libraries can be
 * wrapped with a one-line adapter.
 */
export interface ForeignQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount?: number | null }>;
}

export type Executor = Queryable | ForeignQueryable;

/** Runs a statement on either one of our executors or a caller's client. */
export async function execute<R>(
  executor: Executor,
  text: string,
  params: readonly unknown[] = [],
  options?: QueryOptions,
): Promise<QueryResult<R>> {
  if (isNativeQueryable(executor)) {
    return executor.query<R>(text, params, options);
  }
  const res = await executor.query(text, [...params]);
  return { rows: res.rows as R[], rowCount: res.rowCount ?? null };
}

const NATIVE = Symbol.for('pgferry.queryable');

/** Marks an object as a pgferry Queryable (one that understands QueryOptions). */
export function markNative<T extends object>(q: T): T {
  Object.defineProperty(q, NATIVE, { value: true, enumerable: false });
  return q;
}

/**
 * One of ours: a marked transaction handle, or any Driver (its `query` takes
 * QueryOptions by contract). Without the Driver case, every statement a
 * client sent through its own driver lost `prepare` and was planned afresh.
 */
function isNativeQueryable(x: Executor): x is Queryable {
  const r = x as unknown as Record<string | symbol, unknown>;
  return (
    r[NATIVE] === true || (typeof r.transaction === 'function' && typeof r.listen === 'function')
  );
}
