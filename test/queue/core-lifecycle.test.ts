import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { expectSqlError } from '../support/sql-errors.js';

const db = useTestDatabase();
const S = db.queueSchema;
const INVALID = "queue name contains invalid characters: $, ;, --, or \\'";

async function tables(): Promise<string[]> {
  const rows = await db.sql<{ t: string }>(
    `SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 ORDER BY 1`,
    [S],
  );
  return rows.map((r) => r.t);
}

describe('queue lifecycle (PGMQ §6)', () => {
  it('create makes q_/a_ tables with PGMQ columns, indexes and a meta row, idempotently', async () => {
    await db.sql(`SELECT ${S}.create('Life_One')`);
    await db.sql(`SELECT ${S}.create('Life_One')`);
    const t = await tables();
    expect(t).toContain('q_life_one');
    expect(t).toContain('a_life_one');
    const cols = await db.sql<{
      column_name: string;
      data_type: string;
      is_nullable: string;
      is_identity: string;
    }>(
      `SELECT column_name, data_type, is_nullable, is_identity FROM information_schema.columns
        WHERE table_schema = $1 AND table_name = 'q_life_one' ORDER BY ordinal_position`,
      [S],
    );
    expect(cols.map((c) => [c.column_name, c.data_type, c.is_nullable])).toEqual([
      ['msg_id', 'bigint', 'NO'],
      ['read_ct', 'integer', 'NO'],
      ['enqueued_at', 'timestamp with time zone', 'NO'],
      ['last_read_at', 'timestamp with time zone', 'YES'],
      ['vt', 'timestamp with time zone', 'NO'],
      ['message', 'jsonb', 'YES'],
      ['headers', 'jsonb', 'YES'],
    ]);
    expect(cols[0]!.is_identity).toBe('YES');
    const acols = await db.sql<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'a_life_one' ORDER BY ordinal_position`,
      [S],
    );
    expect(acols.map((c) => c.column_name)).toEqual([
      'msg_id',
      'read_ct',
      'enqueued_at',
      'last_read_at',
      'archived_at',
      'vt',
      'message',
      'headers',
    ]);
    const idx = await db.sql<{ indexname: string }>(
      `SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY 1`,
      [S],
    );
    const names = idx.map((i) => i.indexname);
    expect(names).toEqual(
      expect.arrayContaining([
        'q_life_one_pkey',
        'q_life_one_vt_idx',
        'a_life_one_pkey',
        'archived_at_idx_Life_One',
      ]),
    );
    const meta = await db.sql(
      `SELECT queue_name, is_partitioned, is_unlogged FROM ${S}.meta WHERE queue_name = 'Life_One'`,
    );
    expect(meta).toEqual([{ queue_name: 'Life_One', is_partitioned: false, is_unlogged: false }]);
  });

  it('create_unlogged makes only the queue table unlogged; create on an existing queue keeps is_unlogged', async () => {
    await db.sql(`SELECT ${S}.create_unlogged('fast')`);
    await db.sql(`SELECT ${S}.create('fast')`);
    const rel = await db.sql<{ relname: string; relpersistence: string }>(
      `SELECT c.relname, c.relpersistence FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname IN ('q_fast', 'a_fast') ORDER BY 1`,
      [S],
    );
    expect(rel).toEqual([
      { relname: 'a_fast', relpersistence: 'p' },
      { relname: 'q_fast', relpersistence: 'u' },
    ]);
    const [m] = await db.sql(`SELECT is_unlogged FROM ${S}.meta WHERE queue_name = 'fast'`);
    expect(m).toEqual({ is_unlogged: true });
    const listed = await db.sql(`SELECT * FROM ${S}.list_queues() WHERE queue_name = 'fast'`);
    expect(listed).toEqual([
      {
        queue_name: 'fast',
        is_partitioned: false,
        is_unlogged: true,
        created_at: expect.any(Date),
      },
    ]);
    await db.sql(`SELECT ${S}.create_non_partitioned('plain_np')`);
    expect(await tables()).toContain('q_plain_np');
  });

  it('list_queues returns queue_record rows with PGMQ field order', async () => {
    const rows = await db.sql<{ r: string }>(`SELECT ${S}.list_queues()::text AS r`);
    expect(rows.length).toBeGreaterThan(0);
    const attrs = await db.sql<{ attname: string }>(
      `SELECT a.attname FROM pg_attribute a JOIN pg_type t ON t.typrelid = a.attrelid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = $1 AND t.typname = 'queue_record' AND a.attnum > 0 ORDER BY a.attnum`,
      [S],
    );
    expect(attrs.map((a) => a.attname)).toEqual([
      'queue_name',
      'is_partitioned',
      'is_unlogged',
      'created_at',
    ]);
  });

  it('drop_queue drops both tables and the meta row; false with a NOTICE for a missing queue', async () => {
    await db.sql(`SELECT ${S}.create('to_drop')`);
    const [d] = await db.sql(`SELECT ${S}.drop_queue('to_drop') AS d`);
    expect(d).toEqual({ d: true });
    expect(await tables()).not.toContain('q_to_drop');
    expect(await db.sql(`SELECT 1 FROM ${S}.meta WHERE queue_name = 'to_drop'`)).toEqual([]);
    const client = await db.pool.connect();
    const notices: string[] = [];
    client.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      const res = await client.query(`SELECT ${S}.drop_queue('to_drop') AS d`);
      expect(res.rows[0]).toEqual({ d: false });
    } finally {
      client.release();
    }
    expect(notices).toContain('pgmq queue `to_drop` does not exist');
  });

  it('deprecated drop_queue(q, partitioned) warns and always returns true', async () => {
    await db.sql(`SELECT ${S}.create('old_drop')`);
    const client = await db.pool.connect();
    const notices: string[] = [];
    client.on('notice', (n) => notices.push(`${n.severity}: ${n.message}`));
    try {
      expect(
        (await client.query(`SELECT ${S}.drop_queue('old_drop', false) AS d`)).rows[0],
      ).toEqual({ d: true });
      expect(
        (await client.query(`SELECT ${S}.drop_queue('never_was', true) AS d`)).rows[0],
      ).toEqual({ d: true });
      await client.query(`SELECT ${S}.detach_archive('whatever')`);
    } finally {
      client.release();
    }
    expect(notices).toContain(
      'WARNING: drop_queue(queue_name, partitioned) is deprecated and will be removed in PGMQ v2.0. Use drop_queue(queue_name) instead',
    );
    expect(notices).toContain(
      'WARNING: detach_archive(queue_name) is deprecated and is a no-op. It will be removed in PGMQ v2.0. Archive tables are no longer member objects.',
    );
    expect(await tables()).not.toContain('q_old_drop');
  });

  it('purge_queue counts and truncates; the archive stays and numbering continues', async () => {
    await db.sql(`SELECT ${S}.create('purge_me')`);
    await db.sql(`SELECT ${S}.send_batch('purge_me', ARRAY['1','2','3']::jsonb[])`);
    await db.sql(`SELECT ${S}.archive('purge_me', 1::bigint)`);
    const [p] = await db.sql(`SELECT ${S}.purge_queue('purge_me') AS n`);
    expect(p).toEqual({ n: '2' });
    expect(await db.sql(`SELECT count(*)::int AS n FROM ${S}.a_purge_me`)).toEqual([{ n: 1 }]);
    const [next] = await db.sql(`SELECT * FROM ${S}.send('purge_me', '4')`);
    expect(next).toEqual({ send: '4' });
  });

  it('refuses a second name for the same lower-cased table (PGMQ names it lower(q_<name>))', async () => {
    await db.sql(`SELECT ${S}.create('MyQ')`);
    await db.sql(`SELECT ${S}.send('MyQ', '{"x":1}')`);
    const err = await db.sql(`SELECT ${S}.create('myq')`).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'P0001' });
    expect(String((err as Error).message)).toMatch(
      /^queue name "myq" collides with existing queue "MyQ"/,
    );
    // mapped to the typed error by the queue client
    await expect(db.queueClient().createQueue('MYQ')).rejects.toMatchObject({
      code: 'PGFERRY_INVALID_QUEUE_NAME',
    });
    // nothing changed: one meta row, the message still there
    const metas = await db.sql<{ queue_name: string }>(
      `SELECT queue_name FROM ${S}.meta WHERE lower(queue_name) = 'myq' ORDER BY 1`,
    );
    expect(metas.map((m) => m.queue_name)).toEqual(['MyQ']);
    expect(await db.sql(`SELECT msg_id FROM ${S}.read('MyQ', 30, 1)`)).toEqual([{ msg_id: '1' }]);
    // the same name again is still an idempotent create
    await db.sql(`SELECT ${S}.create('MyQ')`);
    expect(await db.sql(`SELECT ${S}.drop_queue('MyQ') AS d`)).toEqual([{ d: true }]);
  });

  it('accepts what PGMQ accepts: spaces, dots, double quotes, unicode', async () => {
    for (const name of ['with space', 'dot.ted', 'say "hi"', 'ünïcødé_队列']) {
      await db.sql(`SELECT ${S}.create($1)`, [name]);
      const [s] = await db.sql<{ send: string }>(`SELECT * FROM ${S}.send($1, '{"n":1}'::jsonb)`, [
        name,
      ]);
      const rows = await db.sql(`SELECT msg_id, message FROM ${S}.read($1, 30, 1)`, [name]);
      expect(rows).toEqual([{ msg_id: s!.send, message: { n: 1 } }]);
      expect(await db.sql(`SELECT ${S}.drop_queue($1) AS d`, [name])).toEqual([{ d: true }]);
    }
  });
});

describe('queue names (PGMQ §4)', () => {
  it('format_table_name lowers and prefixes, refusing $ ; -- and quotes', async () => {
    expect(await db.sql(`SELECT ${S}.format_table_name('AbC', 'q') AS t`)).toEqual([
      { t: 'q_abc' },
    ]);
    for (const bad of ['a$b', 'a;b', 'a--b', "a'b"]) {
      await expectSqlError(
        db.sql(`SELECT ${S}.format_table_name($1, 'q')`, [bad]),
        'P0001',
        INVALID,
      );
    }
  });

  it('validate_queue_name refuses more than 47 characters; NULL and empty pass', async () => {
    await db.sql(`SELECT ${S}.validate_queue_name($1)`, ['x'.repeat(47)]);
    await expectSqlError(
      db.sql(`SELECT ${S}.validate_queue_name($1)`, ['x'.repeat(48)]),
      'P0001',
      'queue name is too long, maximum length is 47 characters',
    );
    await db.sql(`SELECT ${S}.validate_queue_name(NULL)`);
    await db.sql(`SELECT ${S}.validate_queue_name('')`);
  });

  it('hostile names fail everywhere with PGMQ errors and change nothing', async () => {
    const before = await tables();
    const [metaBefore] = await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${S}.meta`);
    const hostile = [
      `x'); DROP TABLE ${S}.meta; --`,
      'q; DROP SCHEMA public CASCADE',
      'a$$b',
      "o'brien",
      'x--',
    ];
    for (const name of hostile) {
      for (const call of [
        `SELECT ${S}.create($1)`,
        `SELECT ${S}.create_unlogged($1)`,
        `SELECT ${S}.drop_queue($1)`,
        `SELECT ${S}.purge_queue($1)`,
        `SELECT * FROM ${S}.send($1, '{}'::jsonb)`,
        `SELECT * FROM ${S}.send_batch($1, ARRAY['{}']::jsonb[])`,
        `SELECT * FROM ${S}.read($1, 30, 1)`,
        `SELECT * FROM ${S}.pop($1)`,
        `SELECT * FROM ${S}.archive($1, 1::bigint)`,
        `SELECT * FROM ${S}.delete($1, 1::bigint)`,
        `SELECT * FROM ${S}.set_vt($1, 1::bigint, 10)`,
        `SELECT * FROM ${S}.metrics($1)`,
      ]) {
        await expectSqlError(db.sql(call, [name]), 'P0001', INVALID);
      }
    }
    // A name that is long but otherwise harmless.
    await expectSqlError(db.sql(`SELECT ${S}.create($1)`, ['n'.repeat(200)]), 'P0001', /too long/);
    expect(await tables()).toEqual(before);
    expect(await db.sql(`SELECT count(*)::int AS n FROM ${S}.meta`)).toEqual([metaBefore]);
  });

  it('a NULL queue name fails with 22004', async () => {
    await expectSqlError(
      db.sql(`SELECT ${S}.create(NULL)`),
      '22004',
      'null values cannot be formatted as an SQL identifier',
    );
    await expectSqlError(db.sql(`SELECT * FROM ${S}.send(NULL, '{}'::jsonb)`), '22004');
  });

  it('a missing queue fails with 42P01 from every message function', async () => {
    const calls = [
      `SELECT * FROM ${S}.send('nope', '{}'::jsonb)`,
      `SELECT * FROM ${S}.send_batch('nope', ARRAY['{}']::jsonb[])`,
      `SELECT * FROM ${S}.read('nope', 30, 1)`,
      `SELECT * FROM ${S}.read_with_poll('nope', 30, 1, 1, 10)`,
      `SELECT * FROM ${S}.pop('nope')`,
      `SELECT * FROM ${S}.set_vt('nope', 1::bigint, 30)`,
      `SELECT * FROM ${S}.archive('nope', 1::bigint)`,
      `SELECT * FROM ${S}.archive('nope', ARRAY[1]::bigint[])`,
      `SELECT * FROM ${S}.delete('nope', 1::bigint)`,
      `SELECT * FROM ${S}.delete('nope', ARRAY[1]::bigint[])`,
      `SELECT ${S}.purge_queue('nope')`,
      `SELECT * FROM ${S}.metrics('nope')`,
    ];
    for (const c of calls)
      await expectSqlError(db.sql(c), '42P01', `relation "${S}.q_nope" does not exist`);
  });
});
