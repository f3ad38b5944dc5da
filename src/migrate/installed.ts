import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { components, componentOrder, latestVersion, type ComponentName } from './components.js';
import { withDriver, type ConnectOptions } from './connect.js';
import { recordedVersions, VERSION_TABLE } from './version-table.js';
import { checkSchemaName } from './schema-name.js';

export interface InstalledOptions extends ConnectOptions {
  /** Only look in these schemas (default: every schema with a pgferry version table). */
  schemas?: readonly string[];
  logger?: Logger;
}

export interface InstalledComponent {
  /** The component's name; a name this pgferry does not know comes from a newer release. */
  component: ComponentName | (string & {});
  schema: string;
  /** Highest migration applied. */
  version: number;
  /** Highest migration this pgferry ships for it (undefined for an unknown component). */
  latest: number | undefined;
}

function order(component: string): number {
  const i = componentOrder.indexOf(component as ComponentName);
  return i < 0 ? componentOrder.length : i;
}

/**
 * What pgferry has installed in the database: every component, the schema it
 * is in and its version, read from the version tables the current role may
 * read. Installs nothing.
 */
export async function installed(options: InstalledOptions = {}): Promise<InstalledComponent[]> {
  const only = options.schemas?.map(checkSchemaName);
  return withDriver(options, options.logger ?? silentLogger, async (driver) => {
    const found = await driver.query<{ schema: string }>(
      `SELECT n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relname = $1 AND c.relkind IN ('r', 'p')
          AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
          AND ($2::text[] IS NULL OR n.nspname = ANY($2::text[]))
        ORDER BY n.nspname`,
      [VERSION_TABLE, only ?? null],
    );
    const out: InstalledComponent[] = [];
    for (const { schema } of found.rows) {
      for (const { component, version } of await recordedVersions(driver, schema)) {
        const latest = Object.hasOwn(components, component)
          ? latestVersion(components[component as ComponentName])
          : undefined;
        out.push({ component, schema, version, latest });
      }
    }
    return out.sort(
      (a, b) => order(a.component) - order(b.component) || a.schema.localeCompare(b.schema),
    );
  });
}
