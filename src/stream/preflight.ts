import type { Queryable } from '../driver/types.js';
import { MigrationError } from '../errors.js';

/**
 * Refuses to install the stream engine over a PgQue (or PgQ) installation
 * that pgferry did not make: a `queue` table without pgferry's version table.
 */
export async function refuseForeignPgque(db: Queryable, schema: string): Promise<void> {
  const foreign = await db.query(
    `SELECT 1 FROM pg_tables t
      WHERE t.schemaname = $1 AND t.tablename = 'queue'
        AND NOT EXISTS (SELECT 1 FROM pg_tables v WHERE v.schemaname = $1 AND v.tablename = '_pgferry_migrations')`,
    [schema],
  );
  if (foreign.rows.length > 0) {
    throw new MigrationError(
      'PGFERRY_FOREIGN_SCHEMA',
      `schema "${schema}" already holds a PgQue/PgQ installation that pgferry did not make ` +
        `(a queue table without pgferry's version table); pgferry will not modify it. ` +
        `Install the stream engine into another schema (\`pgferry migrate --stream-schema <name>\`), ` +
        `or remove that installation first (pgque.uninstall()).`,
    );
  }
}
