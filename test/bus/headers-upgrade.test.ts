// Upgrading a bus at migration 3 to 4 (sql/bus/0004_headers.sql): a role
// that was granted the bus by hand under another name than the configured
// one may call the two new headers functions too, or its IsolatedBackend
// (which calls them) would stop working after the upgrade.
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { installBusUpTo } from '../support/bus-upgrade.js';
import { migrate } from '../../src/index.js';

const db = useTestDatabase();
const SCHEMA = 'upg_bus';
const byHand = `bus_by_hand_${process.pid}`;
const never = `bus_never_${process.pid}`;

afterAll(async () => {
  await db.sql(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  for (const r of [byHand, never]) await db.sql(`DROP ROLE IF EXISTS ${r}`);
});

describe('bus migration 4 on an installed bus', () => {
  it('grants the headers functions to every role that held the old ones, and to no other', async () => {
    await installBusUpTo(db, SCHEMA, 3);
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
