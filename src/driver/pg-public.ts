/**
 * The parts of node-postgres that appear in pgferry's public types, declared
 * structurally so the published `.d.ts` files need neither `pg`'s types
 * (`@types/pg`) nor `any`. A real `pg.Pool` / `pg.PoolConfig` fits them.
 */
export interface PgQueryConfig {
  text: string;
  values?: unknown[];
  name?: string;
}

export interface PgQueryResult {
  rows: unknown[];
  rowCount: number | null;
}

/** A client checked out of a pool. */
export interface PgPoolClient {
  query(config: PgQueryConfig | string): Promise<PgQueryResult>;
  release(destroy?: boolean | Error): void;
}

/** A node-postgres `Pool` (what `new pg.Pool(…)` returns). */
export interface PgPool {
  /** The settings the pool was made with (its LISTEN connection reuses them). */
  readonly options: object;
  query(config: PgQueryConfig): Promise<PgQueryResult>;
  connect(): Promise<PgPoolClient>;
  end(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(
    event: 'connect',
    listener: (client: { on(event: 'error', listener: (err: Error) => void): unknown }) => void,
  ): unknown;
}

/** Settings for the pool pgferry creates: any `pg.PoolConfig` field. */
export interface PgPoolConfig {
  max?: number;
  idleTimeoutMillis?: number;
  connectionTimeoutMillis?: number;
  statement_timeout?: number;
  query_timeout?: number;
  application_name?: string;
  keepAlive?: boolean;
  ssl?: boolean | object;
  [option: string]: unknown;
}
