import type { Driver, Queryable } from '../driver/types.js';
import { PgDriver } from '../driver/pg.js';
import { MigrationError, PgferryError, InvalidArgumentError } from '../errors.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { quoteIdent } from '../driver/quote.js';
import { components, componentOrder, type ComponentName } from './components.js';

export type SchemaNames = Partial<Record<ComponentName, string>>;

export interface MigrateOptions {
  /** Driver to run on; otherwise one is made from `connectionString` / `DATABASE_URL` / `PG*`. */
  driver?: Driver;
  connectionString?: string;
  /** Which engines to install (default: all). Required components are added. */
  components?: readonly ComponentName[];
  /** Schema per engine (default: queue `pgmq`). */
  schemas?: SchemaNames;
  logger?: Logger;
}

export interface AppliedMigration {
  component: ComponentName;
  schema: string;
  version: number;
  name: string;
}

export interface MigrateResult {
  applied: AppliedMigration[];
  /** Version of each component's schema after the run. */
  versions: Partial<Record<ComponentName, number>>;
}

/** Oldest PostgreSQL pgferry supports. */
export const MIN_SERVER_VERSION_NUM = 140000;
const LOCK_KEY = "hashtext('pgferry.migrate')";
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Validates a schema name: lower-case letters, digits and underscores (at most 63). */
export function checkSchemaName(name: string): string {
  if (typeof name !== 'string' || !SCHEMA_NAME.test(name)) {
    throw new InvalidArgumentError(
      `invalid schema name ${JSON.stringify(name)}: use lower-case letters, digits and underscores (at most 63, not starting with a digit)`,
    );
  }
  return name;
}

export function resolveSchemas(schemas: SchemaNames = {}): Record<ComponentName, string> {
  const out = {} as Record<ComponentName, string>;
  for (const name of componentOrder) {
    out[name] = checkSchemaName(schemas[name] ?? components[name].defaultSchema);
  }
  return out;
}

/** Throws unless `serverVersionNum` (server_version_num) is PostgreSQL 14 or newer. */
export function checkServerVersion(serverVersionNum: number): void {
  if (serverVersionNum < MIN_SERVER_VERSION_NUM) {
    throw new MigrationError(
      'PGFERRY_POSTGRES_TOO_OLD',
      `pgferry needs PostgreSQL 14 or newer; this server is ${Math.floor(serverVersionNum / 10000)}`,
    );
  }
}

function expand(sql: string, own: string, schemas: Record<ComponentName, string>): string {
  let out = sql.replaceAll('@schema@', quoteIdent(own)).replaceAll('@schema_name@', own);
  for (const [name, schema] of Object.entries(schemas)) {
    out = out.replaceAll(`@${name}_schema@`, quoteIdent(schema));
  }
  return out;
}

async function currentVersion(db: Queryable, schema: string): Promise<number> {
  const exists = await db.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [
    `${quoteIdent(schema)}._pgferry_migrations`,
  ]);
  if (!exists.rows[0]?.ok) return 0;
  const res = await db.query<{ v: number | null }>(
    `SELECT max(version)::int AS v FROM ${quoteIdent(schema)}._pgferry_migrations`,
  );
  return res.rows[0]?.v ?? 0;
}

/**
 * Installs or upgrades pgferry's SQL engines. Each migration runs in its own
 * transaction under a transaction-scoped advisory lock, re-reading the
 * version after taking the lock, so concurrent migrators (several app
 * instances starting at once) apply each migration exactly once.
 */
export async function migrate(options: MigrateOptions = {}): Promise<MigrateResult> {
  const logger = options.logger ?? silentLogger;
  const driver =
    options.driver ??
    new PgDriver({
      ...(options.connectionString ? { connectionString: options.connectionString } : {}),
      logger,
      maxConnections: 1,
    });
  try {
    return await run(driver, options, logger);
  } finally {
    if (!options.driver) await driver.close();
  }
}

async function run(
  driver: Driver,
  options: MigrateOptions,
  logger: Logger,
): Promise<MigrateResult> {
  const schemas = resolveSchemas(options.schemas);
  const wanted = new Set<ComponentName>();
  const add = (name: ComponentName): void => {
    for (const dep of components[name].requires) add(dep);
    wanted.add(name);
  };
  for (const name of options.components ?? componentOrder) add(name);

  const ver = await driver.query<{ v: number }>(
    `SELECT current_setting('server_version_num')::int AS v`,
  );
  checkServerVersion(Number(ver.rows[0]!.v));

  const result: MigrateResult = { applied: [], versions: {} };
  for (const name of componentOrder) {
    if (!wanted.has(name)) continue;
    const component = components[name];
    const schema = schemas[name];
    const latest = component.migrations.length;
    let version = 0;
    for (const migration of component.migrations) {
      const applied = await driver.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock(${LOCK_KEY})`);
        version = await currentVersion(tx, schema);
        if (version > latest) {
          throw new MigrationError(
            'PGFERRY_SCHEMA_TOO_NEW',
            `schema "${schema}" is at ${name} migration ${version}, but this pgferry only knows ${latest}; ` +
              `upgrade pgferry instead of running an older version against this database`,
          );
        }
        if (migration.version <= version) return false;
        if (version === 0) {
          await component.preflight?.(tx, schema);
          await tx.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
          await tx.query(
            `CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}._pgferry_migrations (
               version integer PRIMARY KEY,
               name text NOT NULL,
               component text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())`,
          );
        }
        try {
          await tx.query(expand(migration.sql, schema, schemas));
        } catch (err) {
          const detail = err instanceof Error ? err.message : String(err);
          throw new MigrationError(
            'PGFERRY_MIGRATION_FAILED',
            `${name} migration ${migration.version} (${migration.name}) failed in schema "${schema}": ${detail}`,
            { cause: err },
          );
        }
        await tx.query(
          `INSERT INTO ${quoteIdent(schema)}._pgferry_migrations (version, name, component) VALUES ($1, $2, $3)`,
          [migration.version, migration.name, name],
        );
        return true;
      });
      if (applied) {
        version = migration.version;
        logger.info(
          { component: name, schema, version: migration.version },
          `applied ${name} migration ${migration.name}`,
        );
        result.applied.push({
          component: name,
          schema,
          version: migration.version,
          name: migration.name,
        });
      }
    }
    if (component.migrations.length === 0) version = await currentVersion(driver, schema);
    result.versions[name] = Math.max(version, 0);
  }
  return result;
}

/** Re-exported for callers that catch migration errors by class. */
export { MigrationError, PgferryError };
