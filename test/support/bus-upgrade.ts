// Shared by the bus upgrade tests: a bus installed the way an earlier
// release left it (its migrations up to a version, in a schema of the
// test's own), and the generated per-member functions the catalog holds.
import type { TestDb } from './db.js';
import { expand, resolveSchemas } from '../../src/migrate/migrator.js';
import { components } from '../../src/migrate/components.js';
import { testClient } from './connections.js';

/** Creates `schema` with the bus migrations up to `version` applied and recorded. */
export async function installBusUpTo(db: TestDb, schema: string, version: number): Promise<void> {
  const c = testClient({ connectionString: db.url });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query(`CREATE SCHEMA ${schema}`);
    await c.query(
      `CREATE TABLE ${schema}._pgferry_migrations (
         version integer PRIMARY KEY, name text NOT NULL, component text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const schemas = resolveSchemas({ queue: db.queueSchema, bus: schema });
    for (const m of components.bus.migrations.filter((x) => x.version <= version)) {
      await c.query(expand(m.sql, schema, schemas));
      await c.query(
        `INSERT INTO ${schema}._pgferry_migrations (version, name, component) VALUES ($1, $2, 'bus')`,
        [m.version, m.name],
      );
    }
    await c.query('COMMIT');
  } finally {
    await c.end();
  }
}

/** The names of the functions generated for a member queue (`bus_<hex>`) in `schema`, sorted. */
export async function generatedFunctions(
  db: TestDb,
  schema: string,
  queue: string,
): Promise<string[]> {
  const rows = await db.sql<{ f: string }>(
    `SELECT p.proname AS f FROM pg_proc p
      WHERE p.pronamespace = $1::regnamespace AND p.proname LIKE '%' || $2 ORDER BY 1`,
    [schema, queue.slice(4)],
  );
  return rows.map((r) => r.f);
}
