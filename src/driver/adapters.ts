import type { ForeignQueryable } from './types.js';
import type { PostgresJsQueryable } from './postgres.js';
import { PGLITE_QUERY_OPTIONS, type PGliteTransactionLike } from './pglite.js';
import { toTextParams } from './text-params.js';

/*
 * One-line adapters that turn a transaction of another library into an
 * `Executor`, so `client.send(..., { tx })` runs inside the caller's own
 * transaction and commits or rolls back with the business write.
 *
 * None imports its library: each takes the caller's object and is typed by
 * the few members it calls. A node-postgres `PoolClient` (and Kysely or
 * Drizzle over node-postgres, if you hold the client) needs no adapter.
 */

let nextQueryId = 0;

/** The part of a Kysely `Transaction` (or `Kysely`) used here. */
export interface KyselyLike {
  executeQuery(
    query: never,
  ): Promise<{ rows: unknown[]; numAffectedRows?: bigint; numChangedRows?: bigint }>;
  withoutPlugins?(): KyselyLike;
}

/**
 * A Kysely transaction as an Executor: `db.transaction().execute(async (trx) =>
 * client.send('q', msg, { tx: kyselyExecutor(trx) }))`. Plugins are bypassed
 * (a CamelCasePlugin would rename the columns pgferry reads); statements go
 * through Kysely's own connection of that transaction, so they commit with it.
 */
export function kyselyExecutor(trx: KyselyLike): ForeignQueryable {
  const target = trx.withoutPlugins ? trx.withoutPlugins() : trx;
  return {
    async query(text, values = []) {
      // The shape of Kysely's CompiledQuery.raw(text, values), built here so
      // that pgferry does not have to import kysely.
      const compiled = {
        sql: text,
        parameters: values,
        query: { kind: 'RawNode', sqlFragments: [text], parameters: [] },
        queryId: { queryId: `pgferry-${++nextQueryId}` },
      };
      const res = await target.executeQuery(compiled as never);
      const affected = res.numAffectedRows ?? res.numChangedRows;
      return {
        rows: res.rows,
        rowCount: affected === undefined ? res.rows.length : Number(affected),
      };
    },
  };
}

/** Drizzle's `sql` tag (from `drizzle-orm`), which the adapter uses to build a parameterised query. */
export interface DrizzleSqlTag {
  raw(text: string): unknown;
  param(value: unknown): unknown;
  join(chunks: never[]): unknown;
}

/** The part of a Drizzle transaction (or database) used here. */
export interface DrizzleLike {
  execute(query: never): PromiseLike<unknown>;
}

/**
 * A Drizzle transaction as an Executor: `db.transaction(async (tx) =>
 * client.send('q', msg, { tx: drizzleExecutor(tx, sql) }))`, with `sql` from
 * `drizzle-orm`. Works with Drizzle on node-postgres, postgres.js and PGlite.
 * The statement's `$n` placeholders are turned into Drizzle params (pgferry's
 * statements never contain `$n` inside string literals).
 */
export function drizzleExecutor(tx: DrizzleLike, sql: DrizzleSqlTag): ForeignQueryable {
  return {
    async query(text, values = []) {
      const chunks: unknown[] = [];
      let last = 0;
      for (const m of text.matchAll(/\$(\d+)/g)) {
        chunks.push(sql.raw(text.slice(last, m.index)));
        chunks.push(sql.param(values[Number(m[1]) - 1]));
        last = m.index + m[0].length;
      }
      chunks.push(sql.raw(text.slice(last)));
      const res = await tx.execute(sql.join(chunks as never[]) as never);
      return normaliseResult(res);
    },
  };
}

/** node-postgres-style `{ rows, rowCount }`, postgres.js row lists and PGlite results alike. */
function normaliseResult(res: unknown): { rows: unknown[]; rowCount: number | null } {
  if (Array.isArray(res)) {
    const count = (res as { count?: number | null }).count;
    return { rows: Array.from(res as unknown[]), rowCount: count ?? res.length };
  }
  const r = res as { rows?: unknown[]; rowCount?: number | null; affectedRows?: number };
  const rows = r.rows ?? [];
  return { rows, rowCount: r.rowCount ?? r.affectedRows ?? rows.length };
}

/**
 * A postgres.js transaction as an Executor: `sql.begin(async (tx) =>
 * client.send('q', msg, { tx: postgresJsExecutor(tx) }))`. Parameters are
 * sent as node-postgres would send them (see text-params.ts).
 */
export function postgresJsExecutor(tx: PostgresJsQueryable): ForeignQueryable {
  return {
    async query(text, values = []) {
      const params = toTextParams(values).map((v) =>
        v === null ? null : tx.typed(v as never, 705),
      );
      const res = await tx.unsafe(text, params as never[]);
      return { rows: Array.from(res), rowCount: res.count ?? null };
    },
  };
}

/**
 * A PGlite transaction as an Executor: `db.transaction(async (tx) =>
 * client.send('q', msg, { tx: pgliteExecutor(tx) }))`. Results are shaped as
 * the PGlite driver shapes them (int8 as a string).
 */
export function pgliteExecutor(tx: PGliteTransactionLike): ForeignQueryable {
  return {
    async query(text, values = []) {
      const res = await tx.query(text, toTextParams(values), PGLITE_QUERY_OPTIONS);
      return normaliseResult(res);
    },
  };
}

/** The part of a Prisma client or interactive transaction used here. */
export interface PrismaLike {
  $queryRawUnsafe(query: string, ...values: unknown[]): Promise<unknown>;
}

/**
 * A Prisma interactive transaction as an Executor: `prisma.$transaction(async
 * (tx) => client.send('q', msg, { tx: prismaExecutor(tx) }))`. Prisma maps
 * result types itself (bigint as BigInt, which pgferry accepts); rowCount is
 * the number of rows returned.
 */
export function prismaExecutor(tx: PrismaLike): ForeignQueryable {
  return {
    async query(text, values = []) {
      const rows = (await tx.$queryRawUnsafe(text, ...values)) as unknown[];
      return { rows, rowCount: rows.length };
    },
  };
}
