import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { eventually, useTestDatabase } from '../support/db.js';
import { migrate } from '../../src/migrate/migrator.js';
import { Bus, IsolatedBackend } from '../../src/bus/index.js';
import { collect, makeBusLogin } from './helpers.js';
import { testClient } from '../support/connections.js';

// The bus component in a non-default schema, with a non-default role name
// (the pgferry.bus_role setting at migration time).
const db = useTestDatabase();
const customRole = `bus_custom_${randomBytes(4).toString('hex')}`;
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('bus in schema ferry_bus with role ' + customRole, () => {
  it('installs, grants the configured role, and works as a login role holding it', async () => {
    const url = new URL(db.url);
    url.searchParams.set('options', `-c pgferry.bus_role=${customRole}`);
    const result = await migrate({
      connectionString: url.toString(),
      components: ['bus'],
      schemas: { queue: db.queueSchema, bus: 'ferry_bus' },
    });
    expect([...new Set(result.applied.map((a) => `${a.component}@${a.schema}`))]).toEqual([
      'bus@ferry_bus',
    ]);
    cleanups.push(async () => {
      await db.sql(`DROP OWNED BY ${customRole}`);
      await db.sql(`DROP ROLE IF EXISTS ${customRole}`);
    });
    const privs = await db.sql<{ f: string; ok: boolean }>(
      `SELECT p.proname AS f, has_function_privilege($1, p.oid, 'EXECUTE') AS ok
         FROM pg_proc p WHERE p.pronamespace = 'ferry_bus'::regnamespace ORDER BY 1`,
      [customRole],
    );
    expect(privs.filter((p) => p.ok).map((p) => p.f)).toEqual([
      'bus_archive',
      'bus_archive_many',
      'bus_join',
      'bus_leave',
      'bus_peek',
      'bus_publish',
      'bus_publish',
      'bus_read',
      'bus_subscribe',
      'bus_subscribe_with_headers',
    ]);
    expect(
      (await db.sql<{ r: string }>(`SELECT bus_role AS r FROM ferry_bus._pgferry_bus_config`))[0]!
        .r,
    ).toBe(customRole);

    const login = await makeBusLogin(db.url, customRole);
    cleanups.push(() => login.drop());
    const members = [0, 1].map(() => {
      const backend = db.track(
        new IsolatedBackend({ connectionString: login.url, schema: 'ferry_bus' }),
      );
      const bus = new Bus<string>({ backend, channel: 'elsewhere' });
      db.track({ close: () => bus.stop() });
      return bus;
    });
    for (const m of members) await m.start();
    const got = collect(members[1]!);
    expect(await members[0]!.publish('over ferry_bus')).toBe(1);
    await eventually(() => got.length === 1);
    expect(got[0]!.message).toBe('over ferry_bus');
    // The public installation's registry was not touched.
    expect(await db.sql(`SELECT 1 FROM public._pgferry_bus_member`)).toEqual([]);
    expect((await db.sql(`SELECT 1 FROM ferry_bus._pgferry_bus_member`)).length).toBe(2);
    // The login role holds nothing in the default installation.
    const c = testClient({ connectionString: login.url });
    await c.connect();
    try {
      await expect(c.query(`SELECT public.bus_join('x')`)).rejects.toMatchObject({ code: '42501' });
    } finally {
      await c.end();
    }
    for (const m of members) await m.stop();
  });
});
