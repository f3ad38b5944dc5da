import type { Queryable } from '../driver/types.js';
import { quoteIdent } from '../driver/quote.js';

/**
 * The version table: `<schema>._pgferry_migrations`, one per schema, keyed by
 * (component, version), so several components can share one schema and each
 * keeps its own numbering.
 *
 * pgferry 0.1 keyed it by version alone; prepareVersionTable() upgrades that
 * shape in place (same columns, wider primary key), keeping every row.
 */
export const VERSION_TABLE = '_pgferry_migrations';

function table(schema: string): string {
  return `${quoteIdent(schema)}.${VERSION_TABLE}`;
}

export async function versionTableExists(db: Queryable, schema: string): Promise<boolean> {
  const res = await db.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [
    table(schema),
  ]);
  return res.rows[0]?.ok ?? false;
}

/** Highest version of `component` applied in `schema` (0 when none). */
export async function currentVersion(
  db: Queryable,
  schema: string,
  component: string,
): Promise<number> {
  if (!(await versionTableExists(db, schema))) return 0;
  const res = await db.query<{ v: number | null }>(
    `SELECT max(version)::int AS v FROM ${table(schema)} WHERE component = $1`,
    [component],
  );
  return res.rows[0]?.v ?? 0;
}

/** Every component recorded in `schema`, with its highest version. */
export async function recordedVersions(
  db: Queryable,
  schema: string,
): Promise<{ component: string; version: number }[]> {
  const res = await db.query<{ component: string; version: number }>(
    `SELECT component, max(version)::int AS version FROM ${table(schema)}
      GROUP BY component ORDER BY component`,
  );
  return res.rows;
}

/**
 * Creates the version table in `schema` (which must exist), or upgrades a
 * 0.1 table whose primary key is `version` alone. Call under the migration
 * lock, in the transaction that records the next version.
 */
export async function prepareVersionTable(db: Queryable, schema: string): Promise<void> {
  await db.query(
    `CREATE TABLE IF NOT EXISTS ${table(schema)} (
       version integer NOT NULL,
       name text NOT NULL,
       component text NOT NULL,
       applied_at timestamptz NOT NULL DEFAULT now(),
       PRIMARY KEY (component, version))`,
  );
  const pk = await db.query<{ conname: string; columns: number }>(
    `SELECT conname, cardinality(conkey) AS columns FROM pg_constraint
      WHERE conrelid = to_regclass($1) AND contype = 'p'`,
    [table(schema)],
  );
  const old = pk.rows[0];
  if (old && Number(old.columns) === 1) {
    await db.query(
      `ALTER TABLE ${table(schema)} DROP CONSTRAINT ${quoteIdent(old.conname)},
         ADD PRIMARY KEY (component, version)`,
    );
  }
}

export async function recordVersion(
  db: Queryable,
  schema: string,
  component: string,
  version: number,
  name: string,
): Promise<void> {
  await db.query(`INSERT INTO ${table(schema)} (version, name, component) VALUES ($1, $2, $3)`, [
    version,
    name,
    component,
  ]);
}
