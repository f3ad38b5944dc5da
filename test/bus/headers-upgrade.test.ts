// Upgrading a bus at migration 3 to 4 (sql/bus/0004_headers.sql): a role
// that was granted the bus by hand under another name than the configured
// one may call the two new headers functions too, or its IsolatedBackend
// (which calls them) would stop working after the upgrade.
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { useTestDatabase } from '../support/db.js';
import { migrate } from '../../src/index.js';
import { expand, resolveSchemas } from '../../src/migrate/migrator.js';
import { components } from '../../src/migrate/components.js';

const db = useTestDatabase();
const SCHEMA = 'upg_bus';
const byHand = `bus_by_hand_${process.pid}`;
const never = `bus_never_${process.pid}`;

afterAll(async () => {
  await db.sql(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  for (const r of [byHand, never]) await db.sql(`DROP ROLE IF EXISTS ${r}`);
});

async function installBusUpTo3(): Promise<void> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query(`CREATE SCHEMA ${SCHEMA}`);
    await c.query(
      `CREATE TABLE ${SCHEMA}._pgferry_migrations (
         version integer PRIMARY KEY, name text NOT NULL, component text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const schemas = resolveSchemas({ queue: db.queueSchema, bus: SCHEMA });
    for (const m of components.bus.migrations.filter((x) => x.version <= 3)) {
      await c.query(expand(m.sql, SCHEMA, schemas));
      await c.query(
        `INSERT INTO ${SCHEMA}._pgferry_migrations (version, name, component) VALUES ($1, $2, 'bus')`,
        [m.version, m.name],
      );
    }
    await c.query('COMMIT');
  } finally {
    await c.end();
  }
}

describe('bus migration 4 on an installed bus', () => {
  it('grants the headers functions to every role that held the old ones, and to no other', async () => {
    await installBusUpTo3();
    await db.sql(`CREATE ROLE ${byHand} NOLOGIN`);
    await db.sql(`CREATE ROLE ${never} NOLOGIN`);
    await db.sql(`SELECT ${SCHEMA}._pgferry_bus_grant($1)`, [byHand]);
    const result = await migrate({
      connectionString: db.url,
      components: ['bus'],
      schemas: { queue: db.queueSchema, bus: SCHEMA },
    });
    expect(result.applied.map((a) => a.version)).toEqual([4, 5, 6, 7]);
    const can = async (role: string, fn: string): Promise<boolean> =>
      (
        await db.sql<{ ok: boolean }>(`SELECT has_function_privilege($1, $2, 'EXECUTE') AS ok`, [
          role,
          `${SCHEMA}.${fn}`,
        ])
      )[0]!.ok;
    for (const fn of [
      'bus_publish(text, text, jsonb, jsonb)',
      'bus_subscribe_with_headers(text, text, integer, integer, integer)',
      // bus 0005 grants it the same way (whoever may run bus_archive).
      'bus_archive_many(text, text, bigint[])',
      'bus_read(text, text, integer, integer, bigint[])',
      // bus 0007: whoever may run bus_read.
      'bus_peek(text, text, integer, bigint[], bigint[])',
    ]) {
      expect([fn, await can(byHand, fn)]).toEqual([fn, true]);
      expect([fn, await can('pgferry_bus', fn)]).toEqual([fn, true]);
      expect([fn, await can(never, fn)]).toEqual([fn, false]);
      expect([fn, await can('public', fn)]).toEqual([fn, false]);
    }
  });
});
