import type { Driver } from '../driver/types.js';
import { MigrationError, PgferryError } from '../errors.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { quoteIdent } from '../driver/quote.js';
import { components, componentOrder, latestVersion, type ComponentName } from './components.js';
import { withDriver, type ConnectOptions } from './connect.js';
import { checkSchemaName } from './schema-name.js';
import { checkServerVersion, refuseConflicts } from './preflight.js';
import {
  currentVersion,
  prepareVersionTable,
  recordedVersions,
  recordVersion,
  versionTableExists,
} from './version-table.js';

export type SchemaNames = Partial<Record<ComponentName, string>>;

export interface MigrateOptions extends ConnectOptions {
  /** Which engines to install (default: all). Required components are added. */
  components?: readonly ComponentName[];
  /** Schema per engine (default: queue `pgmq`). Several engines may share one schema. */
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

const LOCK_KEY = "hashtext('pgferry.migrate')";

export function resolveSchemas(schemas: SchemaNames = {}): Record<ComponentName, string> {
  const out = {} as Record<ComponentName, string>;
  for (const name of componentOrder) {
    out[name] = checkSchemaName(schemas[name] ?? components[name].defaultSchema);
  }
  return out;
}

/** Replaces the `@schema@`-style placeholders of a migration's SQL. */
export function expand(sql: string, own: string, schemas: Record<ComponentName, string>): string {
  let out = sql.replaceAll('@schema@', quoteIdent(own)).replaceAll('@schema_name@', own);
  for (const [name, schema] of Object.entries(schemas)) {
    out = out.replaceAll(`@${name}_schema@`, quoteIdent(schema));
  }
  return out;
}

/**
 * Installs or upgrades pgferry's SQL engines. Each migration runs in its own
 * transaction under a transaction-scoped advisory lock, re-reading the
 * version after taking the lock, so concurrent migrators (several app
 * instances starting at once) apply each migration exactly once.
 */
export async function migrate(options: MigrateOptions = {}): Promise<MigrateResult> {
  const logger = options.logger ?? silentLogger;
  return withDriver(options, logger, (driver) => run(driver, options, logger));
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
  for (const name of wanted) {
    const together = [...wanted].filter((other) => schemas[other] === schemas[name]);
    refuseConflicts(name, schemas[name], components[name].conflicts ?? [], together);
  }

  const ver = await driver.query<{ v: number }>(
    `SELECT current_setting('server_version_num')::int AS v`,
  );
  checkServerVersion(Number(ver.rows[0]!.v));

  const result: MigrateResult = { applied: [], versions: {} };
  for (const name of componentOrder) {
    if (!wanted.has(name)) continue;
    const component = components[name];
    const schema = schemas[name];
    const latest = latestVersion(component);
    let version = 0;
    for (const migration of component.migrations) {
      const applied = await driver.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock(${LOCK_KEY})`);
        version = await currentVersion(tx, schema, name);
        if (version > latest) {
          throw new MigrationError(
            'PGFERRY_SCHEMA_TOO_NEW',
            `schema "${schema}" is at ${name} migration ${version}, but this pgferry only knows ${latest}; ` +
              `upgrade pgferry instead of running an older version against this database`,
          );
        }
        if (migration.version <= version) return false;
        if (version === 0) {
          if (component.conflicts && (await versionTableExists(tx, schema))) {
            const present = (await recordedVersions(tx, schema)).map((r) => r.component);
            refuseConflicts(name, schema, component.conflicts, present);
          }
          await component.preflight?.(tx, schema);
          await tx.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
        }
        await prepareVersionTable(tx, schema);
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
        await recordVersion(tx, schema, name, migration.version, migration.name);
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
    if (component.migrations.length === 0) version = await currentVersion(driver, schema, name);
    result.versions[name] = Math.max(version, 0);
  }
  return result;
}

// Kept importable from here for callers of 0.1 that imported them from the migrator.
export { checkSchemaName } from './schema-name.js';
export { checkServerVersion, MIN_SERVER_VERSION_NUM } from './preflight.js';
/** Re-exported for callers that catch migration errors by class. */
export { MigrationError, PgferryError };
