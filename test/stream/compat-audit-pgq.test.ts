// Compatibility audit against PgQue 0.2.0: PgQ helper functions its clients
// and tests call by name (current_event_table, maint_operations, seq_getval,
// insert_event_raw, ...) and small message/shape details.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { expectSqlError } from '../support/sql-errors.js';
import { S, tick } from './helpers.js';

const db = useTestDatabase();

describe('PgQ helpers PgQue ships (sql/stream/0012_pgq_helpers.sql)', () => {
  it('current_event_table names the table inserts go to, as clients count raw rows through it', async () => {
    await db.sql(`SELECT ${S}.create_queue('cet')`);
    const [t] = await db.sql<{ t: string }>(`SELECT ${S}.current_event_table('cet') AS t`);
    expect(t!.t).toMatch(/^pgque\.event_\d+_0$/);
    await db.sql(`SELECT ${S}.send('cet', 'a'::text), ${S}.send('cet', 'b'::text)`);
    const [n] = await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${t!.t}`);
    expect(n!.n).toBe(2);
    await expectSqlError(
      db.sql(`SELECT ${S}.current_event_table('nope')`),
      'P0001',
      'Event queue not found',
    );
    await db.sql(`SELECT ${S}.set_queue_config('cet', 'disable_insert', 'true')`);
    await expectSqlError(
      db.sql(`SELECT ${S}.current_event_table('cet')`),
      'P0001',
      'Writing to queue disabled',
    );
  });

  it('seq_getval reads a queue sequence without moving it; seq_setval never goes back', async () => {
    await db.sql(`SELECT ${S}.create_queue('seqs')`);
    const seq = `(SELECT queue_event_seq FROM ${S}.queue WHERE queue_name = 'seqs')`;
    const get = async (): Promise<string> =>
      (await db.sql<{ v: string }>(`SELECT ${S}.seq_getval(${seq}) AS v`))[0]!.v;
    expect(await get()).toBe('1');
    await db.sql(`SELECT ${S}.send('seqs', 'a'::text)`);
    expect(await get()).toBe('1');
    await db.sql(`SELECT ${S}.send('seqs', 'b'::text)`);
    expect(await get()).toBe('2');
    const [r] = await db.sql<{ up: string; down: string }>(
      `SELECT ${S}.seq_setval(${seq}, 40) AS up, ${S}.seq_setval(${seq}, 7) AS down`,
    );
    expect(r).toEqual({ up: '40', down: '40' });
    const [q] = await db.sql<{ a: string; b: string }>(
      `SELECT ${S}.quote_fqname('a.B c') AS a, ${S}.quote_fqname('x') AS b`,
    );
    expect(q).toEqual({ a: 'a."B c"', b: 'public.x' });
  });

  it('maint_operations lists rotation step 1 for due queues and step 2 while a switch awaits it', async () => {
    await db.sql(`SELECT ${S}.create_queue('mo_a'), ${S}.create_queue('mo_b')`);
    const ops = async (): Promise<string[]> =>
      (
        await db.sql<{ f: string }>(
          `SELECT func_name || ':' || coalesce(func_arg, '') AS f FROM ${S}.maint_operations()
            WHERE func_name <> 'vacuum'`,
        )
      ).map((r) => r.f);
    expect(await ops()).toEqual([]);
    await db.sql(
      `UPDATE ${S}.queue SET queue_switch_time = now() - interval '3 hours' WHERE queue_name = 'mo_b'`,
    );
    expect(await ops()).toEqual([
      'pgque.maint_rotate_tables_step1:mo_b',
      'pgque.maint_rotate_tables_step2:',
    ]);
    // The filter a Go client runs, then the calls it makes.
    const due = await db.sql<{ func_arg: string }>(
      `SELECT func_arg FROM ${S}.maint_operations()
        WHERE func_name = 'pgque.maint_rotate_tables_step1' AND func_arg IS NOT NULL ORDER BY func_arg`,
    );
    expect(due.map((r) => r.func_arg)).toEqual(['mo_b']);
    await db.sql(`SELECT ${S}.maint_rotate_tables_step1('mo_b')`);
    // Switched: only step 2 is pending now.
    expect(await ops()).toEqual(['pgque.maint_rotate_tables_step2:']);
    await db.sql(`SELECT ${S}.maint_rotate_tables_step2()`);
    expect(await ops()).toEqual([]);
    const [c] = await db.sql<{ t: string }>(`SELECT ${S}.current_event_table('mo_b') AS t`);
    expect(c!.t).toMatch(/_1$/);
  });

  it('insert_event_raw sets id, owner and retry count; event_retry_raw fills a retry queue', async () => {
    await db.sql(
      `SELECT ${S}.create_queue('raw'), ${S}.subscribe('raw', 'c'), ${S}.subscribe('raw', 'd')`,
    );
    const [own] = await db.sql<{ sub_id: number }>(
      `SELECT s.sub_id FROM ${S}.subscription s JOIN ${S}.consumer c ON c.co_id = s.sub_consumer
        WHERE c.co_name = 'c'`,
    );
    const [r] = await db.sql<{ a: string; b: string }>(
      `SELECT ${S}.insert_event_raw('raw', NULL, now(), NULL, NULL, 't', 'all', 'x1', NULL, NULL, NULL) AS a,
              ${S}.insert_event_raw('raw', 9000, now(), $1, 2, 't', 'mine', NULL, NULL, NULL, NULL) AS b`,
      [own!.sub_id],
    );
    expect(r!.b).toBe('9000');
    await tick(db, 'raw');
    const seen = async (consumer: string): Promise<unknown[]> =>
      (
        await db.sql(
          `SELECT msg_id::int, payload, retry_count, extra1 FROM ${S}.receive('raw', $1) ORDER BY msg_id`,
          [consumer],
        )
      ).map((m) => [m.msg_id, m.payload, m.retry_count, m.extra1]);
    expect(await seen('c')).toEqual([
      [Number(r!.a), 'all', null, 'x1'],
      [9000, 'mine', 2, null],
    ]);
    expect(await seen('d')).toEqual([[Number(r!.a), 'all', null, 'x1']]);
    await expectSqlError(
      db.sql(
        `SELECT ${S}.insert_event_raw('nope', NULL, now(), NULL, NULL, 't', 'd', NULL, NULL, NULL, NULL)`,
      ),
      'P0001',
      'queue not found: nope',
    );

    const [e] = await db.sql<{ id: string }>(
      `SELECT ${S}.event_retry_raw('raw', 'd', now(), 77, now(), 4, 'rt', 'again', NULL, NULL, NULL, NULL) AS id`,
    );
    expect(e!.id).toBe('77');
    const rq = await db.sql(
      `SELECT ev_id::int, ev_retry, ev_data FROM ${S}.retry_queue r JOIN ${S}.queue q ON q.queue_id = r.ev_queue
        WHERE q.queue_name = 'raw'`,
    );
    expect(rq).toEqual([{ ev_id: 77, ev_retry: 4, ev_data: 'again' }]);
    await expectSqlError(
      db.sql(
        `SELECT ${S}.event_retry_raw('raw', 'zz', now(), NULL, now(), 1, 't', 'd', NULL, NULL, NULL, NULL)`,
      ),
      'P0001',
      'consumer not registered',
    );
  });

  it('batch_event_sql gives a runnable query for the batch; batch_event_tables names its tables', async () => {
    await db.sql(`SELECT ${S}.create_queue('bes'), ${S}.subscribe('bes', 'c')`);
    await db.sql(`SELECT ${S}.send_batch('bes', array['a', 'b']::text[])`);
    await tick(db, 'bes');
    const [b] = await db.sql<{ b: string }>(`SELECT ${S}.next_batch('bes', 'c') AS b`);
    const [q] = await db.sql<{ q: string }>(`SELECT ${S}.batch_event_sql($1) AS q`, [b!.b]);
    const rows = await db.sql<{ ev_data: string }>(q!.q);
    expect(rows.map((x) => x.ev_data)).toEqual(['a', 'b']);
    const tables = await db.sql<{ t: string }>(`SELECT t FROM ${S}.batch_event_tables($1) t`, [
      b!.b,
    ]);
    expect(tables.map((x) => x.t)).toContain(
      (await db.sql<{ t: string }>(`SELECT ${S}.current_event_table('bes') AS t`))[0]!.t,
    );
    await db.sql(`SELECT ${S}.finish_batch($1)`, [b!.b]);
    await expectSqlError(
      db.sql(`SELECT ${S}.batch_event_sql($1)`, [b!.b]),
      'P0001',
      'batch not found',
    );
  });

  it('insert_event_bulk: PgQue’s owner-only bulk insert, the one send_batch delegates to', async () => {
    await db.sql(`SELECT ${S}.create_queue('bulk')`);
    const [r] = await db.sql<{ ids: string[]; none: string[] }>(
      `SELECT ${S}.insert_event_bulk('bulk', 't', array['a', NULL, 'c']) AS ids,
              ${S}.insert_event_bulk('nope', 't', '{}'::text[]) AS none`,
    );
    expect(r!.ids).toHaveLength(3);
    expect(r!.none).toEqual([]);
    const [t] = await db.sql<{ t: string }>(`SELECT ${S}.current_event_table('bulk') AS t`);
    const rows = await db.sql<{ ev_data: string | null }>(
      `SELECT ev_data FROM ${t!.t} WHERE ev_id = ANY ($1::bigint[]) ORDER BY ev_id`,
      [r!.ids],
    );
    expect(rows.map((x) => x.ev_data)).toEqual(['a', null, 'c']);
    await db.sql(`SELECT ${S}.set_queue_config('bulk', 'disable_insert', 'true')`);
    await expectSqlError(
      db.sql(`SELECT ${S}.insert_event_bulk('bulk', 't', array['x'])`),
      'P0001',
      'Insert into queue disallowed',
    );
    // PgQue's test reads the call out of send_batch's definition.
    for (const sig of [
      'text, text, jsonb[]',
      'text, text, text[]',
      'text, jsonb[]',
      'text, text[]',
    ]) {
      const [d] = await db.sql<{ d: string }>(
        `SELECT pg_get_functiondef('${S}.send_batch(${sig})'::regprocedure) AS d`,
      );
      expect(d!.d).toMatch(/pgque\.insert_event_bulk\s*\(/);
    }
    const [p] = await db.sql<{ admin: boolean; writer: boolean; send: boolean }>(
      `SELECT has_function_privilege('pgque_admin', '${S}.insert_event_bulk(text, text, text[])', 'EXECUTE') AS admin,
              has_function_privilege('pgque_writer', '${S}.insert_event_bulk(text, text, text[])', 'EXECUTE') AS writer,
              has_function_privilege('pgque_writer', '${S}.send_batch(text, text, text[])', 'EXECUTE') AS send`,
    );
    expect(p).toEqual({ admin: false, writer: false, send: true });
  });

  it('are for the admin role only', async () => {
    const rows = await db.sql<{ f: string; reader: boolean; writer: boolean; admin: boolean }>(
      `SELECT p.oid::regprocedure::text AS f,
              has_function_privilege('pgque_reader', p.oid, 'EXECUTE') AS reader,
              has_function_privilege('pgque_writer', p.oid, 'EXECUTE') AS writer,
              has_function_privilege('pgque_admin', p.oid, 'EXECUTE') AS admin
         FROM pg_proc p
        WHERE p.pronamespace = '${S}'::regnamespace
          AND p.proname IN ('current_event_table', 'maint_operations', 'maint_tables_to_vacuum', 'seq_getval',
                            'seq_setval', 'quote_fqname', 'insert_event_raw', 'event_retry_raw',
                            'batch_event_sql', 'batch_event_tables')`,
    );
    expect(rows).toHaveLength(10);
    for (const r of rows)
      expect([r.f, r.reader, r.writer, r.admin]).toEqual([r.f, false, false, true]);
  });
});

describe('message and shape details', () => {
  it('"Not subscriber to queue" spells a NULL name as NULL, as PgQ does', async () => {
    await db.sql(`SELECT ${S}.create_queue('nsub')`);
    await expectSqlError(
      db.sql(`SELECT * FROM ${S}.receive(NULL, 'c')`),
      'P0001',
      'Not subscriber to queue: NULL/c',
    );
    await expectSqlError(
      db.sql(`SELECT ${S}.next_batch('nsub', NULL)`),
      'P0001',
      'Not subscriber to queue: nsub/NULL',
    );
  });

  it('get_batch_cursor with a NULL cursor name or quick limit returns nothing (PgQ)', async () => {
    await db.sql(`SELECT ${S}.create_queue('gbc'), ${S}.subscribe('gbc', 'c')`);
    await db.sql(`SELECT ${S}.send('gbc', 'a'::text)`);
    await tick(db, 'gbc');
    const [b] = await db.sql<{ b: string }>(`SELECT ${S}.next_batch('gbc', 'c') AS b`);
    expect(await db.sql(`SELECT * FROM ${S}.get_batch_cursor($1, 'cur', NULL)`, [b!.b])).toEqual(
      [],
    );
    expect(await db.sql(`SELECT * FROM ${S}.get_batch_cursor($1, NULL, 10)`, [b!.b])).toEqual([]);
    expect(await db.sql(`SELECT * FROM ${S}.get_batch_cursor($1, 'cur', 10)`, [b!.b])).toHaveLength(
      1,
    );
  });

  it('get_queue_info.ev_per_sec spans tick ids down to the last id minus 20, as PgQ computes it', async () => {
    await db.sql(`SELECT ${S}.create_queue('eps')`);
    // 25 ticks, 10 s apart, 100 events between each two.
    await db.sql(
      `INSERT INTO ${S}.tick (tick_queue, tick_id, tick_time, tick_snapshot, tick_event_seq)
       SELECT q.queue_id, i, now() - make_interval(secs => (30 - i) * 10), pg_current_snapshot(), i * 100
         FROM ${S}.queue q, generate_series(2, 25) i WHERE q.queue_name = 'eps'`,
    );
    // Ticks 5..25: 20 gaps of 10 s and 2000 events = 10 per second, on either
    // window; make the oldest gap in PgQ's window differ so the span shows.
    await db.sql(
      `UPDATE ${S}.tick t SET tick_event_seq = 0 FROM ${S}.queue q
        WHERE q.queue_id = t.tick_queue AND q.queue_name = 'eps' AND t.tick_id = 5`,
    );
    const [r] = await db.sql<{ ev_per_sec: number; last_tick_id: string }>(
      `SELECT ev_per_sec, last_tick_id FROM ${S}.get_queue_info('eps')`,
    );
    expect(r!.last_tick_id).toBe('25');
    // (2500 - 0) / 200 s
    expect(r!.ev_per_sec).toBeCloseTo(12.5, 6);
  });

  it('a disabled queue takes sends from a replicating session (session_replication_role = replica)', async () => {
    await db.sql(`SELECT ${S}.create_queue('repl')`);
    await db.sql(`SELECT ${S}.set_queue_config('repl', 'disable_insert', 'true')`);
    await expectSqlError(
      db.sql(`SELECT ${S}.send('repl', 'x'::text)`),
      'P0001',
      'Insert into queue disallowed',
    );
    const c = await db.pool.connect();
    try {
      await c.query(`SET session_replication_role = replica`);
      await c.query(`SELECT ${S}.send('repl', 'a'::text)`);
      await c.query(`SELECT ${S}.send_batch('repl', array['b', 'c']::text[])`);
      await c.query(`SELECT ${S}.insert_event('repl', 't', 'd')`);
    } finally {
      await c.query(`RESET session_replication_role`);
      c.release();
    }
    const [t] = await db.sql<{ t: string }>(
      `SELECT queue_data_pfx || '_' || queue_cur_table AS t FROM ${S}.queue WHERE queue_name = 'repl'`,
    );
    const [n] = await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${t!.t}`);
    expect(n!.n).toBe(4);
  });

  it('event_dead stores a NULL reason as NULL; nack without a reason says max retries exceeded', async () => {
    await db.sql(`SELECT ${S}.create_queue('edr'), ${S}.subscribe('edr', 'c')`);
    await db.sql(`SELECT ${S}.set_queue_config('edr', 'max_retries', '0')`);
    await db.sql(`SELECT ${S}.send_batch('edr', array['a', 'b']::text[])`);
    await tick(db, 'edr');
    const msgs = await db.sql<{ batch_id: string; msg_id: string }>(
      `SELECT * FROM ${S}.receive('edr', 'c') ORDER BY msg_id`,
    );
    await db.sql(`SELECT ${S}.event_dead($1, $2, NULL, now(), NULL, NULL, 't', 'a')`, [
      msgs[0]!.batch_id,
      msgs[0]!.msg_id,
    ]);
    await db.sql(
      `SELECT ${S}.nack($1, ROW($2, $1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::${S}.message)`,
      [msgs[1]!.batch_id, msgs[1]!.msg_id],
    );
    const rows = await db.sql(
      `SELECT ev_id::text AS id, dl_reason FROM ${S}.dlq_inspect('edr') ORDER BY ev_id`,
    );
    expect(rows).toEqual([
      { id: msgs[0]!.msg_id, dl_reason: null },
      { id: msgs[1]!.msg_id, dl_reason: 'max retries exceeded' },
    ]);
  });

  it('drop_queue sends the client no NOTICE about cascaded tables', async () => {
    const c = await db.pool.connect();
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      await c.query(`SELECT ${S}.create_queue('dropquiet')`);
      await c.query(`SELECT ${S}.drop_queue('dropquiet')`);
    } finally {
      c.release();
    }
    expect(notices).toEqual([]);
  });

  it('config.tick_period_ms is checked by the table (exact divisor of 1000), as in PgQue', async () => {
    await expectSqlError(db.sql(`UPDATE ${S}.config SET tick_period_ms = 7`), '23514');
    await expectSqlError(db.sql(`UPDATE ${S}.config SET tick_period_ms = 0`), '23514');
    await db.sql(`UPDATE ${S}.config SET tick_period_ms = 250`);
    await db.sql(`UPDATE ${S}.config SET tick_period_ms = 100`);
  });

  it('subscription.sub_id has a default, as PgQ’s serial column', async () => {
    const [d] = await db.sql<{ d: string | null }>(
      `SELECT pg_get_expr(adbin, adrelid) AS d FROM pg_attrdef
        WHERE adrelid = '${S}.subscription'::regclass
          AND adnum = (SELECT attnum FROM pg_attribute WHERE attrelid = '${S}.subscription'::regclass
                                                        AND attname = 'sub_id')`,
    );
    expect(d!.d).toMatch(/nextval\('(pgque\.)?subscription_sub_id_seq'::regclass\)/);
  });
});
