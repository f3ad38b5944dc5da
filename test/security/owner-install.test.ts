// The recommended setup: a dedicated, non-superuser owner role installs
// pgferry (docs/security.md). The definer functions then run as that role,
// so even a hole in them could reach no more than what it owns.
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { migrate } from '../../src/migrate/migrator.js';
import { withDatabase } from '../support/urls.js';
import { makeLogin, type Login } from '../support/logins.js';
import { testClient } from '../support/connections.js';

const admin = inject('adminUrl');
const suffix = randomBytes(4).toString('hex');
const owner = `pgferry_owner_${suffix}`;
const dbName = `sec_owner_${suffix}`;
const password = randomBytes(12).toString('hex');
let busLogin: Login | undefined;

async function asAdmin<T>(fn: (c: pg.Client) => Promise<T>, database?: string): Promise<T> {
  const c = testClient({ connectionString: database ? withDatabase(admin, database) : admin });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

afterAll(async () => {
  await busLogin?.drop();
  await asAdmin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await c.query(`DROP ROLE IF EXISTS ${owner}`);
  });
});

describe('installing as a dedicated non-superuser owner', () => {
  it('migrates every component, owns every object, and serves the API roles', async () => {
    // The roles pgferry grants to exist cluster-wide already (the suite's
    // template made them); a first install needs CREATEROLE once, or an
    // administrator who creates them (docs/security.md).
    await asAdmin(async (c) => {
      await c.query(
        `CREATE ROLE ${owner} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD '${password}'`,
      );
      await c.query(`CREATE DATABASE ${dbName} OWNER ${owner}`);
    });
    await asAdmin(async (c) => {
      await c.query(`ALTER SCHEMA public OWNER TO ${owner}`);
    }, dbName);
    const u = new URL(withDatabase(admin, dbName));
    u.username = owner;
    u.password = password;
    const result = await migrate({ connectionString: u.toString() });
    expect(new Set(result.applied.map((a) => a.component))).toEqual(
      new Set(['queue', 'bus', 'tasks', 'stream']),
    );
    const foreign = await asAdmin(
      (c) =>
        c.query(
          `SELECT p.oid::regprocedure::text AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname IN ('pgmq', 'public', 'pgferry_tasks', 'pgque')
              AND p.proowner <> $1::regrole`,
          [owner],
        ),
      dbName,
    );
    expect(foreign.rows).toEqual([]);
    const su = await asAdmin(
      (c) => c.query(`SELECT rolsuper FROM pg_roles WHERE rolname = $1`, [owner]),
      dbName,
    );
    expect(su.rows).toEqual([{ rolsuper: false }]);

    // A bus member works, and bus_join runs as the owner (not a superuser).
    busLogin = await makeLogin(withDatabase(admin, dbName), ['pgferry_bus'], 'owner_bus');
    const b = testClient({ connectionString: busLogin.url });
    await b.connect();
    try {
      const q = (await b.query<{ q: string }>(`SELECT public.bus_join('owner-test') AS q`)).rows[0]!
        .q;
      expect(
        (await b.query(`SELECT public.bus_publish('owner-test', $1, '{}'::jsonb) AS ids`, [q]))
          .rows,
      ).toEqual([{ ids: [] }]);
      const tableOwner = await asAdmin(
        (c) =>
          c.query(`SELECT tableowner FROM pg_tables WHERE schemaname = 'pgmq' AND tablename = $1`, [
            `q_${q}`,
          ]),
        dbName,
      );
      expect(tableOwner.rows).toEqual([{ tableowner: owner }]);
      await b.query(`SELECT public.bus_leave($1, 'owner-test')`, [q]);
    } finally {
      await b.end();
    }
  });
});
