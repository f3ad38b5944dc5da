// <stream>_admin is trusted with the stream engine, not with the server:
// get_batch_cursor's filter runs with the caller's rights, and admin can
// neither put a trigger on the engine's tables, nor create objects in its
// schema, nor make maint() run a function outside the schema.
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { attempt, useHostileRoles, STREAM as S } from './hostile.js';

const db = useTestDatabase();
const h = useHostileRoles(db);

beforeAll(async () => {
  await db.sql(`SELECT ${S}.create_queue('sec_gbc')`);
  await db.sql(`SELECT ${S}.register_consumer('sec_gbc', 'c')`);
  await db.sql(`SELECT ${S}.send('sec_gbc', 'a', 'one'), ${S}.send('sec_gbc', 'b', 'two'),
                       ${S}.send('sec_gbc', 'a', 'three')`);
  await db.sql(`SELECT ${S}.force_next_tick('sec_gbc'), ${S}.ticker('sec_gbc')`);
});

describe('get_batch_cursor as a login holding only the admin role', () => {
  it('still filters a batch, with the caller’s rights, and cannot escalate', async () => {
    const c = h.client.admin;
    const role = h.login.admin.role;
    await c.query('BEGIN');
    try {
      const batch = (await c.query<{ b: string }>(`SELECT ${S}.next_batch('sec_gbc', 'c') AS b`))
        .rows[0]!.b;
      expect(batch).not.toBeNull();
      const filtered = await c.query<{ ev_data: string }>(
        `SELECT ev_data FROM ${S}.get_batch_cursor($1, 'cur_a', 10, $2)`,
        [batch, `ev_type = 'a'`],
      );
      expect(filtered.rows.map((r) => r.ev_data)).toEqual(['one', 'three']);
      // the filter runs as the caller, not as the owner
      const asMe = await c.query(`SELECT ev_id FROM ${S}.get_batch_cursor($1, 'cur_me', 10, $2)`, [
        batch,
        `current_user = '${role}' AND session_user = '${role}'`,
      ]);
      expect(asMe.rows).toHaveLength(3);
      // the quick limit, the open cursor holding the rest, and the 3-argument form
      const quick = await c.query(`SELECT ev_id FROM ${S}.get_batch_cursor($1, 'cur_q', 1)`, [
        batch,
      ]);
      expect(quick.rows).toHaveLength(1);
      expect((await c.query(`FETCH ALL FROM cur_q`)).rows).toHaveLength(2);
      await c.query('SAVEPOINT s');
      for (const where of [
        `EXISTS (SELECT 1 FROM pg_catalog.pg_authid)`,
        `(SELECT count(*) FROM pg_catalog.pg_authid WHERE rolpassword IS NOT NULL) >= 0`,
        `pg_catalog.pg_read_file('postgresql.conf') IS NOT NULL`,
        `EXISTS (SELECT pg_catalog.pg_ls_dir('.'))`,
        `EXISTS (SELECT 1 FROM ${S}.config) AND pg_catalog.set_config('role', 'postgres', true) IS NOT NULL`,
      ]) {
        const got = await attempt(
          c,
          `SELECT ev_id FROM ${S}.get_batch_cursor($1, 'cur_x', 10, $2)`,
          [batch, where],
        );
        expect(got, where).toMatch(/^(42501|22023|42704)$/);
        await c.query('ROLLBACK TO SAVEPOINT s');
      }
    } finally {
      await c.query('ROLLBACK');
    }
  });

  it('gives admin no trigger on the engine’s tables and no CREATE in its schema', async () => {
    const c = h.client.admin;
    for (const sql of [
      `CREATE FUNCTION ${S}.sec_evil() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$`,
      `CREATE TABLE ${S}.sec_evil (x int)`,
      `CREATE TRIGGER sec_evil BEFORE UPDATE ON ${S}.subscription FOR EACH ROW EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger()`,
      `ALTER TABLE ${S}.queue ADD COLUMN sec_evil int`,
      `DROP TABLE ${S}.tick`,
    ]) {
      expect(await attempt(c, sql), sql).toBe('42501');
    }
    // GRANT without the grant option only warns: check that it granted nothing
    await c.query(`GRANT SELECT ON ${S}.queue, ${S}.retry_queue TO PUBLIC`);
    expect(
      await db.sql(
        `SELECT has_table_privilege('public', '${S}.queue', 'SELECT') OR
                has_table_privilege('public', '${S}.retry_queue', 'SELECT') AS p`,
      ),
    ).toEqual([{ p: false }]);
  });

  it('runs maint() hooks only from the engine’s own schema', async () => {
    await db.sql(`
      CREATE TABLE public.sec_hook_hits (who name);
      CREATE FUNCTION public.sec_hook(q text) RETURNS integer LANGUAGE sql AS
        $$ INSERT INTO public.sec_hook_hits VALUES (current_user) RETURNING 1 $$;
      CREATE FUNCTION ${S}.sec_hook_ok(q text) RETURNS integer LANGUAGE sql AS
        $$ INSERT INTO public.sec_hook_hits VALUES ('in_schema') RETURNING 1 $$;`);
    try {
      const c = h.client.admin;
      // admin may write the queue row (DML on the catalog) …
      await c.query(
        `UPDATE ${S}.queue SET queue_extra_maint = ARRAY['public.sec_hook', '${S}.sec_hook_ok']
          WHERE queue_name = 'sec_gbc'`,
      );
      await c.query(`SELECT ${S}.maint()`);
      // … but only the schema's own hook ran (as the owner), never the outside one
      expect(await db.sql(`SELECT who::text FROM public.sec_hook_hits`)).toEqual([
        { who: 'in_schema' },
      ]);
    } finally {
      await db.sql(`UPDATE ${S}.queue SET queue_extra_maint = NULL WHERE queue_name = 'sec_gbc'`);
      await db.sql(`DROP FUNCTION ${S}.sec_hook_ok(text); DROP FUNCTION public.sec_hook(text);
                    DROP TABLE public.sec_hook_hits`);
    }
  });
});
