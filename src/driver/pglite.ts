import { markNative } from './types.js';
import type * as D from './types.js';
import { quoteIdent } from './quote.js';
import { parseArrayLiteral, toTextParams } from './text-params.js';
import { ConnectionError, InvalidArgumentError, mapError } from '../errors.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';

/*
 * The PGlite driver (`@electric-sql/pglite`, an optional peer dependency:
 * imported only on first use when no instance is passed in).
 *
 * PGlite is Postgres in WebAssembly with exactly one session. What that means
 * for the seam:
 * - queries and transactions are serialised by PGlite's own mutex: a query
 *   issued outside a transaction waits until the running transaction ends
 *   (so never await `driver.query` inside `driver.transaction`'s callback —
 *   use the `tx` it gets);
 * - LISTEN runs on that same session (there is no second one to dedicate);
 *   notifications are delivered after each statement PGlite runs;
 * - there is no other backend to kill, so reconnect logic has nothing to do.
 */

/** What a PGlite query returns. */
export interface PGliteResults {
  rows: object[];
  affectedRows?: number;
  rowCount?: number;
  command?: string;
}

export interface PGliteQueryOptionsLike {
  parsers?: Record<number, (value: string, typeId: number) => unknown>;
  serializers?: Record<number, (value: unknown) => string>;
}

/** A PGlite transaction (`db.transaction(async (tx) => …)`). */
export interface PGliteTransactionLike {
  query(
    query: string,
    params?: unknown[],
    options?: PGliteQueryOptionsLike,
  ): Promise<PGliteResults>;
  exec(query: string, options?: PGliteQueryOptionsLike): Promise<PGliteResults[]>;
}

/** The part of a PGlite instance pgferry uses (a real `PGlite` satisfies it). */
export interface PGliteLike extends PGliteTransactionLike {
  transaction<T>(fn: (tx: PGliteTransactionLike) => Promise<T>): Promise<T>;
  listen(channel: string, callback: (payload: string) => void): Promise<unknown>;
  unlisten(channel: string, callback?: (payload: string) => void): Promise<void>;
  close(): Promise<void>;
  readonly closed?: boolean;
}

export interface PGliteDriverOptions {
  /** An existing PGlite instance. pgferry never closes an instance it did not create. */
  db?: PGliteLike;
  /** Data directory for a PGlite pgferry creates (`memory://` for in-memory, the default). */
  dataDir?: string;
  /** Extra PGlite options when pgferry creates the instance. */
  pgliteOptions?: Record<string, unknown>;
  logger?: Logger;
}

/*
 * Results shaped as node-postgres shapes them, whatever parsers the caller's
 * PGlite has: int8 as a string (never a lossy number or a bigint), bytea as a
 * Buffer. jsonb, timestamps, int4 and floats already match.
 */
const INT8 = 20;
const INT8_ARRAY = 1016;
const BYTEA = 17;
const asText = (s: string): string => s;
const PARSERS: Record<number, (value: string, typeId: number) => unknown> = {
  [INT8]: asText,
  [INT8_ARRAY]: (s) => parseArrayLiteral(s, asText),
  [BYTEA]: (s) => Buffer.from(s.slice(2), 'hex'),
};
/** Parameters are already text (see text-params.ts): send them as they are, whatever type the server inferred. */
const SERIALIZERS = new Proxy({} as Record<number, (value: unknown) => string>, {
  get: () => (value: unknown) => String(value),
});
/** Query options giving node-postgres's parameter and result conventions on any PGlite. */
export const PGLITE_QUERY_OPTIONS: PGliteQueryOptionsLike = {
  parsers: PARSERS,
  serializers: SERIALIZERS,
};
const OPTIONS = PGLITE_QUERY_OPTIONS;

function shape<R>(res: PGliteResults): D.QueryResult<R> {
  const rowCount =
    res.rowCount ?? (res.command === 'SELECT' ? res.rows.length : (res.affectedRows ?? null));
  return { rows: res.rows as R[], rowCount };
}

function mapPGliteError(err: unknown): unknown {
  if (err instanceof Error && /PGlite is closed/i.test(err.message)) {
    return new ConnectionError(err.message, { cause: err });
  }
  return mapError(err);
}

function runner(target: PGliteTransactionLike): D.Queryable {
  return markNative({
    async query<R>(...[text, params = [], options]: D.QueryArgs): Promise<D.QueryResult<R>> {
      try {
        // Like node-postgres: no parameters and no prepare → the simple
        // protocol, which also runs multi-statement scripts (migrations).
        if (params.length === 0 && !options?.prepare) {
          const all = await target.exec(text, OPTIONS);
          return shape<R>(all[all.length - 1] ?? { rows: [] });
        }
        // PGlite caches nothing between calls; `prepare` has no cheaper path here.
        return shape<R>(await target.query(text, toTextParams(params), OPTIONS));
      } catch (err) {
        throw mapPGliteError(err);
      }
    },
  });
}

async function createPGlite(
  dataDir: string | undefined,
  options: Record<string, unknown>,
): Promise<PGliteLike> {
  let mod: typeof import('@electric-sql/pglite');
  try {
    mod = await import('@electric-sql/pglite');
  } catch (err) {
    throw new InvalidArgumentError(
      'the PGlite driver needs @electric-sql/pglite: npm install @electric-sql/pglite (or pass your own `db` instance)',
      { cause: err },
    );
  }
  const db = await mod.PGlite.create({ ...(dataDir ? { dataDir } : {}), ...options });
  return db as unknown as PGliteLike;
}

/** A driver on PGlite (Postgres in WebAssembly, in-process, one session). */
export class PGliteDriver implements D.Driver {
  readonly name = 'pglite';
  private readonly dbReady: Promise<PGliteLike>;
  private readonly ownsDb: boolean;
  private readonly logger: Logger;
  private readonly subscriptions = new Set<D.Subscription>();
  private closing: Promise<void> | undefined;

  constructor(options: PGliteDriverOptions = {}) {
    this.logger = options.logger ?? silentLogger;
    this.ownsDb = !options.db;
    this.dbReady = options.db
      ? Promise.resolve(options.db)
      : createPGlite(options.dataDir, options.pgliteOptions ?? {});
    this.dbReady.catch(() => undefined);
  }

  /** The PGlite instance (created on first use when pgferry owns it). */
  db(): Promise<PGliteLike> {
    return this.dbReady;
  }

  async query<R = D.Row>(...[text, params, options]: D.QueryArgs): Promise<D.QueryResult<R>> {
    return runner(await this.live()).query<R>(text, params, options);
  }

  async transaction<T>(fn: (tx: D.Queryable) => Promise<T>): Promise<T> {
    const db = await this.live();
    try {
      return await db.transaction((tx: PGliteTransactionLike) => fn(runner(tx)));
    } catch (err) {
      throw mapPGliteError(err);
    }
  }

  async listen(channel: string, onNotification: D.NotificationHandler): Promise<D.Subscription> {
    const db = await this.live();
    // PGlite splices the channel into LISTEN as given; quoting keeps its case and dots.
    const quoted = quoteIdent(channel);
    const callback = (payload: string): void => {
      try {
        onNotification(payload === '' ? undefined : payload);
      } catch (err) {
        this.logger.error({ err }, 'pgferry: notification handler threw');
      }
    };
    try {
      await db.listen(quoted, callback);
    } catch (err) {
      throw mapPGliteError(err);
    }
    let done = false;
    const sub: D.Subscription = {
      close: async () => {
        if (done) return;
        done = true;
        this.subscriptions.delete(sub);
        // Not PGlite's returned unlisten: it issues UNLISTEN with the name unquoted.
        if (!db.closed) await db.unlisten(quoted, callback).catch(() => undefined);
      },
    };
    this.subscriptions.add(sub);
    return sub;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const sub of [...this.subscriptions]) await sub.close();
      if (this.ownsDb) {
        const db = await this.dbReady.catch(() => undefined);
        if (db && !db.closed) await db.close();
      }
    })();
    return this.closing;
  }

  private async live(): Promise<PGliteLike> {
    if (this.closing) throw new ConnectionError('driver is closed');
    const db = await this.dbReady;
    if (db.closed) throw new ConnectionError('the PGlite instance is closed');
    return db;
  }
}
