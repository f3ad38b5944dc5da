// Roles and grants: pgque_reader (consume), pgque_writer (produce) are
// siblings; DDL-class functions need pgque_admin; PUBLIC can call nothing.
// A non-default schema gets its own roles (<schema>_reader, …).
import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { migrate } from '../../src/migrate/migrator.js';
import { useTestDatabase } from '../support/db.js';
import { S, connections, tick } from './helpers.js';

const db = useTestDatabase();
const suffix = randomBytes(3).toString('hex');
const W = `t_writer_${suffix}`;
const R = `t_reader_${suffix}`;
const N = `t_nobody_${suffix}`;
const A = `t_admin_${suffix}`;

afterAll(async () => {
  const schemaRoles = ['reader', 'writer', 'admin'].map((r) => `ev_${suffix}_${r}`);
  for (const r of [W, R, N, A, ...schemaRoles.reverse()])
    await db.sql(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
});

async function as(role: string, sql: string, params: unknown[] = []): Promise<string> {
  const [c] = await connections(db, 1);
  await c!.query(`SET ROLE ${role}`);
  try {
    await c!.query(sql, params);
    return 'ok';
  } catch (err) {
    return (err as { code: string }).code;
  } finally {
    await c!.end();
  }
}

describe('roles', () => {
  it('grant the reference’s EXECUTE sets', async () => {
    await db.sql(
      `CREATE ROLE ${W}; GRANT pgque_writer TO ${W}; CREATE ROLE ${R}; GRANT pgque_reader TO ${R}; CREATE ROLE ${N}; CREATE ROLE ${A}; GRANT pgque_admin TO ${A}`,
    );
    expect(await as(A, `select ${S}.create_queue('roles')`)).toBe('ok');
    expect(await as(R, `select ${S}.subscribe('roles', 'rc')`)).toBe('ok');
    // writer: produce only
    expect(await as(W, `select ${S}.send('roles', 'x')`)).toBe('ok');
    expect(await as(W, `select ${S}.send_batch('roles', 't', array['{}']::jsonb[])`)).toBe('ok');
    for (const sql of [
      `select * from ${S}.receive('roles', 'rc')`,
      `select ${S}.ack(1)`,
      `select ${S}.nack(1, ROW(1,1,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL)::${S}.message)`,
      `select ${S}.subscribe('roles', 'w')`,
      `select ${S}.finish_batch(1)`,
      `select ${S}.next_batch('roles', 'rc')`,
      `select * from ${S}.get_batch_events(1)`,
      `select ${S}.event_retry(1, 1, 0)`,
      `select ${S}.register_consumer_at('roles', 'rc', 1)`,
      `select ${S}.create_queue('w')`,
      `select ${S}.ticker()`,
      `select ${S}.force_next_tick('roles')`,
    ]) {
      expect(await as(W, sql), sql).toBe('42501');
    }
    // reader: consume only
    await tick(db, 'roles');
    expect(await as(R, `select * from ${S}.receive('roles', 'rc')`)).toBe('ok');
    expect(await as(R, `select * from ${S}.get_queue_info('roles')`)).toBe('ok'); // #265 fixed
    expect(await as(R, `select * from ${S}.get_consumer_info()`)).toBe('ok');
    expect(await as(R, `select * from ${S}.dlq_inspect('roles')`)).toBe('ok');
    expect(await as(R, `select count(*) from ${S}.dead_letter`)).toBe('ok');
    expect(await as(R, `select ${S}.request_tick('roles')`)).toBe('ok');
    for (const sql of [
      `select ${S}.send('roles', 'x')`,
      `select ${S}.send_batch('roles', array['x']::text[])`,
      `select ${S}.ticker('roles')`,
      `select ${S}.create_queue('r')`,
      `select ${S}.maint()`,
      `select * from ${S}.status()`,
      `select ${S}.dlq_replay(1)`,
    ]) {
      expect(await as(R, sql), sql).toBe('42501');
    }
    const [{ t: ev }] = (await db.sql(
      `select queue_data_pfx as t from ${S}.queue where queue_name = 'roles'`,
    )) as [{ t: string }];
    // nobody: nothing callable, nothing readable (PgQ's legacy PUBLIC SELECT
    // is off by default: set_public_read(true) restores it, see below)
    expect(await as(N, `select ${S}.version()`)).toBe('42501');
    expect(await as(N, `select count(*) from ${S}.queue`)).toBe('42501');
    expect(await as(N, `select count(*) from ${ev}`)).toBe('42501');
    expect(await as(N, `select count(*) from ${S}.dead_letter`)).toBe('42501');
    expect(await as(W, `select count(*) from ${ev}`)).toBe('42501');
    expect(await as(R, `select count(*) from ${ev}`)).toBe('ok');
    // the API roles hold no write privilege on the tables
    expect(await as(R, `delete from ${S}.queue`)).toBe('42501');
    expect(await as(W, `insert into ${S}.consumer (co_name) values ('x')`)).toBe('42501');
    // admin inherits both, but not the owner-only uninstall or the internal bulk insert
    expect(await as(A, `select ${S}.ticker()`)).toBe('ok');
    expect(await as(A, `select * from ${S}.status()`)).toBe('ok');
    expect(await as(A, `select ${S}.send('roles', 'x')`)).toBe('ok');
    expect(await as(A, `select ${S}.uninstall()`)).toBe('42501');
    expect(await as(A, `select ${S}._send_batch_rows('roles', 'x', array['a'])`)).toBe('42501');
    const [m] = await db.sql(
      `select pg_has_role('pgque_reader', 'pgque_writer', 'MEMBER') as rw, pg_has_role('pgque_writer', 'pgque_reader', 'MEMBER') as wr, pg_has_role('pgque_admin', 'pgque_reader', 'MEMBER') as ar`,
    );
    expect(m).toEqual({ rw: false, wr: false, ar: true });
  });

  it('a non-default schema installs with its own roles, also when they already exist', async () => {
    const schema = `ev_${suffix}`;
    await db.sql(
      `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${schema}_reader') THEN CREATE ROLE ${schema}_reader; END IF; END $$`,
    );
    const r = await migrate({
      connectionString: db.url,
      components: ['stream'],
      schemas: { stream: schema },
    });
    expect(r.versions.stream).toBeGreaterThan(0);
    try {
      await db.sql(`GRANT ${schema}_writer TO ${W}`);
      expect(await as(W, `select ${schema}.version()`)).toBe('42501');
      expect(await as(A, `select ${schema}.create_queue('x')`)).toBe('42501'); // pgque_admin has no rights here
      await db.sql(`select ${schema}.create_queue('x')`);
      expect(await as(W, `select ${schema}.send('x', 'y')`)).toBe('ok');
      expect(await as(R, `select * from ${schema}.get_queue_info()`)).toBe('42501');
      // the default schema is untouched by the second install
      expect(
        await db.sql(`select count(*)::int as n from ${S}.queue where queue_name = 'x'`),
      ).toEqual([{ n: 0 }]);
      // idempotent: a second run applies nothing
      const again = await migrate({
        connectionString: db.url,
        components: ['stream'],
        schemas: { stream: schema },
      });
      expect(again.applied).toEqual([]);
    } finally {
      await db.sql(`REVOKE ${schema}_writer FROM ${W}`);
      await db.sql(`DROP SCHEMA ${schema} CASCADE`);
    }
  });

  it('set_public_read switches PgQue’s PUBLIC SELECT on and off (admin only)', async () => {
    await db.sql(`CREATE ROLE ${N}_2; CREATE ROLE ${A}_2; GRANT pgque_admin TO ${A}_2`);
    try {
      expect(await as(A, `select ${S}.create_queue('pubread')`)).toBe('ok');
      const [{ t: ev }] = (await db.sql(
        `select queue_data_pfx as t from ${S}.queue where queue_name = 'pubread'`,
      )) as [{ t: string }];
      expect(await as(`${N}_2`, `select ${S}.set_public_read(true)`)).toBe('42501');
      expect(await as(`${A}_2`, `select ${S}.set_public_read(true)`)).toBe('ok');
      for (const t of [ev, `${ev}_0`, `${S}.queue`, `${S}.tick`, `${S}.retry_queue`])
        expect(await as(`${N}_2`, `select count(*) from ${t}`), t).toBe('ok');
      // a queue created while public_read is on is readable too
      expect(await as(A, `select ${S}.create_queue('pubread2')`)).toBe('ok');
      const [{ t: ev2 }] = (await db.sql(
        `select queue_data_pfx as t from ${S}.queue where queue_name = 'pubread2'`,
      )) as [{ t: string }];
      expect(await as(`${N}_2`, `select count(*) from ${ev2}_1`)).toBe('ok');
      expect(await as(`${N}_2`, `select count(*) from ${S}.dead_letter`)).toBe('42501');
      expect(await as(`${A}_2`, `select ${S}.set_public_read(false)`)).toBe('ok');
      for (const t of [ev, ev2, `${S}.queue`, `${S}.retry_queue`])
        expect(await as(`${N}_2`, `select count(*) from ${t}`), t).toBe('42501');
    } finally {
      await db.sql(`select ${S}.set_public_read(false)`);
      await db.sql(`DROP ROLE ${N}_2; DROP ROLE ${A}_2`);
    }
  });
});
