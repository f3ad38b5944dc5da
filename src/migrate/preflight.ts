import type { Queryable } from '../driver/types.js';
import { InvalidArgumentError, MigrationError } from '../errors.js';

/**
 * Every check the migrator makes before it installs anything: the server's
 * version, and refusals to install an engine over an installation pgferry did
 * not make. The refusals run inside the migration transaction, before the
 * component's first migration.
 */

/** Oldest PostgreSQL pgferry supports. */
export const MIN_SERVER_VERSION_NUM = 140000;

/** Throws unless `serverVersionNum` (server_version_num) is PostgreSQL 14 or newer. */
export function checkServerVersion(serverVersionNum: number): void {
  if (serverVersionNum < MIN_SERVER_VERSION_NUM) {
    throw new MigrationError(
      'PGFERRY_POSTGRES_TOO_OLD',
      `pgferry needs PostgreSQL 14 or newer; this server is ${Math.floor(serverVersionNum / 10000)}`,
    );
  }
}

/** True when `schema` holds table `table` but no pgferry version table. */
async function holdsForeign(db: Queryable, schema: string, table: string): Promise<boolean> {
  const res = await db.query(
    `SELECT 1 FROM pg_tables t
      WHERE t.schemaname = $1 AND t.tablename = $2
        AND NOT EXISTS (SELECT 1 FROM pg_tables v WHERE v.schemaname = $1 AND v.tablename = '_pgferry_migrations')`,
    [schema, table],
  );
  return res.rows.length > 0;
}

/**
 * Refuses to install the queue engine into a schema that belongs to the real
 * pgmq extension, or that holds a PGMQ installation pgferry did not make.
 */
export async function refuseForeignPgmq(db: Queryable, schema: string): Promise<void> {
  const ext = await db.query<{ extversion: string }>(
    `SELECT e.extversion FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
      WHERE e.extname = 'pgmq' AND n.nspname = $1`,
    [schema],
  );
  if (ext.rows.length > 0) {
    throw new MigrationError(
      'PGFERRY_EXTENSION_CONFLICT',
      `schema "${schema}" belongs to the pgmq extension (version ${ext.rows[0]!.extversion}); ` +
        `pgferry will not install over it. Either keep using the extension, or install pgferry ` +
        `into another schema (migrate({ schemas: { queue: 'pgferry_pgmq' } }) or ` +
        `\`pgferry migrate --queue-schema pgferry_pgmq\`), or drop the extension first ` +
        `(DROP EXTENSION pgmq CASCADE deletes its queues).`,
    );
  }
  if (await holdsForeign(db, schema, 'meta')) {
    throw new MigrationError(
      'PGFERRY_FOREIGN_SCHEMA',
      `schema "${schema}" already holds a PGMQ installation that pgferry did not make ` +
        `(a meta table without pgferry's version table); pgferry will not modify it. ` +
        `Install pgferry into another schema, or move that installation away first.`,
    );
  }
}

/**
 * Refuses to install the stream engine over a PgQue (or PgQ) installation
 * that pgferry did not make: a `queue` table without pgferry's version table.
 */
export async function refuseForeignPgque(db: Queryable, schema: string): Promise<void> {
  if (await holdsForeign(db, schema, 'queue')) {
    throw new MigrationError(
      'PGFERRY_FOREIGN_SCHEMA',
      `schema "${schema}" already holds a PgQue/PgQ installation that pgferry did not make ` +
        `(a queue table without pgferry's version table); pgferry will not modify it. ` +
        `Install the stream engine into another schema (\`pgferry migrate --stream-schema <name>\`), ` +
        `or remove that installation first (pgque.uninstall()).`,
    );
  }
}

/**
 * Refuses a schema shared by two components whose SQL APIs define functions
 * of the same names (the queue's PGMQ API and the stream's PgQue API both
 * have `send`, `drop_queue`, …). `present` lists the components that are (or
 * are about to be) in the schema.
 */
export function refuseConflicts(
  component: string,
  schema: string,
  conflicts: readonly string[],
  present: readonly string[],
): void {
  const clash = conflicts.find((c) => present.includes(c));
  if (clash) {
    throw new InvalidArgumentError(
      `the ${component} and ${clash} engines cannot share schema "${schema}": their SQL APIs ` +
        `define functions of the same names; give them different schemas`,
    );
  }
}
