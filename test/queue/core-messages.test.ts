import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { expectSqlError } from '../support/sql-errors.js';

const db = useTestDatabase();
const S = db.queueSchema;

interface Rec {
  msg_id: string;
  read_ct: number;
  enqueued_at: Date;
  last_read_at: Date | null;
  vt: Date;
  message: unknown;
  headers: unknown;
}

let n = 0;
async function freshQueue(): Promise<string> {
  const q = `m${++n}`;
  await db.sql(`SELECT ${S}.create($1)`, [q]);
  return q;
}
const ids = (rows: { msg_id: string }[]): number[] =>
  rows.map((r) => Number(r.msg_id)).sort((a, b) => a - b);
async function now(): Promise<number> {
  const [r] = await db.sql<{ t: Date }>(`SELECT clock_timestamp() AS t`);
  return r!.t.getTime();
}

describe('send (PGMQ §7)', () => {
  it('every overload inserts one row with the documented columns', async () => {
    const q = await freshQueue();
    const before = await now();
    await db.sql(`SELECT * FROM ${S}.send($1, '{"a":1}'::jsonb)`, [q]);
    await db.sql(`SELECT * FROM ${S}.send($1, '{"a":2}'::jsonb, '{"h":1}'::jsonb)`, [q]);
    await db.sql(`SELECT * FROM ${S}.send($1, '{"a":3}'::jsonb, 60)`, [q]);
    await db.sql(
      `SELECT * FROM ${S}.send($1, '{"a":4}'::jsonb, '2030-01-01T00:00:00Z'::timestamptz)`,
      [q],
    );
    await db.sql(`SELECT * FROM ${S}.send($1, '{"a":5}'::jsonb, '{"h":5}'::jsonb, 120)`, [q]);
    await db.sql(
      `SELECT * FROM ${S}.send($1, '{"a":6}'::jsonb, '{"h":6}'::jsonb, '2000-01-01T00:00:00Z'::timestamptz)`,
      [q],
    );
    await db.sql(`SELECT * FROM ${S}.send($1, 'null'::jsonb)`, [q]);
    await db.sql(`SELECT * FROM ${S}.send($1, NULL::jsonb)`, [q]);
    await db.sql(`SELECT * FROM ${S}.send($1, '[1,2]'::jsonb, -5)`, [q]);
    const rows = await db.sql<Rec>(`SELECT * FROM ${S}.q_${q} ORDER BY msg_id`);
    expect(rows.map((r) => Number(r.msg_id))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(rows.map((r) => r.message)).toEqual([
      { a: 1 },
      { a: 2 },
      { a: 3 },
      { a: 4 },
      { a: 5 },
      { a: 6 },
      null,
      null,
      [1, 2],
    ]);
    expect(rows.map((r) => r.headers)).toEqual([
      null,
      { h: 1 },
      null,
      null,
      { h: 5 },
      { h: 6 },
      null,
      null,
      null,
    ]);
    expect(rows.every((r) => r.read_ct === 0 && r.last_read_at === null)).toBe(true);
    const vt = rows.map((r) => r.vt.getTime());
    expect(vt[0]! - before).toBeLessThan(5000);
    expect(vt[2]! - before).toBeGreaterThanOrEqual(59_000);
    expect(vt[2]! - before).toBeLessThan(65_000);
    expect(rows[3]!.vt.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(vt[4]! - before).toBeGreaterThanOrEqual(119_000);
    expect(rows[5]!.vt.toISOString()).toBe('2000-01-01T00:00:00.000Z');
    expect(vt[8]!).toBeLessThan(before + 1000);
  });

  it('returns the new msg_id as a one-row set', async () => {
    const q = await freshQueue();
    expect(await db.sql(`SELECT * FROM ${S}.send($1, '{}'::jsonb)`, [q])).toEqual([{ send: '1' }]);
    expect(await db.sql(`SELECT * FROM ${S}.send($1, '{}'::jsonb)`, [q])).toEqual([{ send: '2' }]);
  });

  it('a NULL delay violates NOT NULL on vt; an untyped third literal is ambiguous', async () => {
    const q = await freshQueue();
    await expectSqlError(
      db.sql(`SELECT * FROM ${S}.send($1, '{}'::jsonb, NULL::integer)`, [q]),
      '23502',
    );
    await expectSqlError(
      db.sql(`SELECT * FROM ${S}.send('${q}', '{}', '5')`),
      '42725',
      /is not unique/,
    );
  });

  it('delays hold: an integer delay and a timestamptz delay keep the message invisible until due', async () => {
    const q = await freshQueue();
    await db.sql(`SELECT * FROM ${S}.send($1, '{"d":"int"}'::jsonb, 2)`, [q]);
    await db.sql(
      `SELECT * FROM ${S}.send($1, '{"d":"ts"}'::jsonb, clock_timestamp() + interval '2 seconds')`,
      [q],
    );
    expect(await db.sql(`SELECT * FROM ${S}.read($1, 30, 10)`, [q])).toEqual([]);
    const sentAt = Date.now();
    const rows: Rec[] = [];
    await eventually(
      async () => {
        rows.push(...(await db.sql<Rec>(`SELECT * FROM ${S}.read($1, 30, 10)`, [q])));
        return rows.length === 2;
      },
      5000,
      50,
    );
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(1500);
    expect(rows.map((r) => r.message)).toEqual(expect.arrayContaining([{ d: 'int' }, { d: 'ts' }]));
    expect(rows).toHaveLength(2);
  });
});

describe('send_batch (PGMQ §7)', () => {
  it('every overload returns the new ids ascending, in array order, pairing headers', async () => {
    const q = await freshQueue();
    const calls = [
      `SELECT * FROM ${S}.send_batch($1, ARRAY['{"i":1}','{"i":2}']::jsonb[])`,
      `SELECT * FROM ${S}.send_batch($1, ARRAY['{"i":3}','{"i":4}']::jsonb[], ARRAY['{"h":3}', NULL]::jsonb[])`,
      `SELECT * FROM ${S}.send_batch($1, ARRAY['{"i":5}']::jsonb[], 30)`,
      `SELECT * FROM ${S}.send_batch($1, ARRAY['{"i":6}']::jsonb[], '2031-01-01Z'::timestamptz)`,
      `SELECT * FROM ${S}.send_batch($1, ARRAY['{"i":7}','{"i":8}']::jsonb[], ARRAY['{"h":7}','{"h":8}']::jsonb[], 0)`,
      `SELECT * FROM ${S}.send_batch($1, ARRAY['{"i":9}']::jsonb[], ARRAY['{"h":9}']::jsonb[], '2001-01-01Z'::timestamptz)`,
    ];
    const got: number[][] = [];
    for (const c of calls)
      got.push((await db.sql<{ send_batch: string }>(c, [q])).map((r) => Number(r.send_batch)));
    expect(got).toEqual([[1, 2], [3, 4], [5], [6], [7, 8], [9]]);
    const rows = await db.sql<Rec>(`SELECT * FROM ${S}.q_${q} ORDER BY msg_id`);
    expect(rows.map((r) => (r.message as { i: number }).i)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(rows.map((r) => r.headers)).toEqual([
      null,
      null,
      { h: 3 },
      null,
      null,
      null,
      { h: 7 },
      { h: 8 },
      { h: 9 },
    ]);
    expect(rows[5]!.vt.toISOString()).toBe('2031-01-01T00:00:00.000Z');
    // One vt for the whole batch.
    expect(rows[6]!.vt.getTime()).toBe(rows[7]!.vt.getTime());
  });

  it('validates: empty or NULL msgs, header count mismatch (an empty headers array counts as 0)', async () => {
    const q = await freshQueue();
    await expectSqlError(
      db.sql(`SELECT ${S}.send_batch($1, ARRAY[]::jsonb[])`, [q]),
      'P0001',
      'msgs cannot be NULL or empty',
    );
    await expectSqlError(
      db.sql(`SELECT ${S}.send_batch($1, NULL::jsonb[])`, [q]),
      'P0001',
      'msgs cannot be NULL or empty',
    );
    await expectSqlError(
      db.sql(`SELECT ${S}.send_batch($1, ARRAY['1','2']::jsonb[], ARRAY['{}']::jsonb[])`, [q]),
      'P0001',
      'headers array length (1) must match msgs array length (2)',
    );
    await expectSqlError(
      db.sql(`SELECT ${S}.send_batch($1, ARRAY['1']::jsonb[], ARRAY[]::jsonb[])`, [q]),
      'P0001',
      'headers array length (0) must match msgs array length (1)',
    );
    expect(await db.sql(`SELECT count(*)::int AS n FROM ${S}.q_${q}`)).toEqual([{ n: 0 }]);
  });
});

describe('read (PGMQ §7)', () => {
  it('takes the lowest visible ids, sets vt, read_ct and last_read_at', async () => {
    const q = await freshQueue();
    await db.sql(`SELECT ${S}.send_batch($1, ARRAY['1','2','3','4']::jsonb[])`, [q]);
    const before = await now();
    const rows = await db.sql<Rec>(`SELECT * FROM ${S}.read($1, 10, 2)`, [q]);
    expect(ids(rows)).toEqual([1, 2]);
    for (const r of rows) {
      expect(r.read_ct).toBe(1);
      expect(r.last_read_at!.getTime()).toBeGreaterThanOrEqual(before - 5);
      expect(r.vt.getTime() - before).toBeGreaterThanOrEqual(9_000);
      expect(r.vt.getTime() - before).toBeLessThan(12_000);
    }
    expect(ids(await db.sql(`SELECT * FROM ${S}.read($1, 10, 5)`, [q]))).toEqual([3, 4]);
    expect(await db.sql(`SELECT * FROM ${S}.read($1, 10, 5)`, [q])).toEqual([]);
  });

  it('qty 0 reads nothing, NULL reads all, negative fails with 2201W', async () => {
    const q = await freshQueue();
    await db.sql(`SELECT ${S}.send_batch($1, ARRAY['1','2','3']::jsonb[])`, [q]);
    expect(await db.sql(`SELECT * FROM ${S}.read($1, 10, 0)`, [q])).toEqual([]);
    await expectSqlError(
      db.sql(`SELECT * FROM ${S}.read($1, 10, -1)`, [q]),
      '2201W',
      'LIMIT must not be negative',
    );
    expect(ids(await db.sql(`SELECT * FROM ${S}.read($1, 10, NULL)`, [q]))).toEqual([1, 2, 3]);
  });

  it('vt 0 leaves messages visible; a NULL vt violates NOT NULL', async () => {
    const q = await freshQueue();
    await db.sql(`SELECT ${S}.send($1, '1'::jsonb)`, [q]);
    await db.sql(`SELECT * FROM ${S}.read($1, 0, 1)`, [q]);
    const [again] = await db.sql<Rec>(`SELECT * FROM ${S}.read($1, 0, 1)`, [q]);
    expect(again!.read_ct).toBe(2);
    await expectSqlError(db.sql(`SELECT * FROM ${S}.read($1, NULL::integer, 1)`, [q]), '23502');
  });

  it('the timestamptz overload sets vt exactly (1.12)', async () => {
    const q = await freshQueue();
    await db.sql(`SELECT ${S}.send($1, '1'::jsonb)`, [q]);
    const [r] = await db.sql<Rec>(
      `SELECT * FROM ${S}.read($1, '2033-03-03T03:03:03Z'::timestamptz, 1)`,
      [q],
    );
    expect(r!.vt.toISOString()).toBe('2033-03-03T03:03:03.000Z');
  });

  it('conditional filters by jsonb containment; {} and NULL mean no filter', async () => {
    const q = await freshQueue();
    await db.sql(
      `SELECT ${S}.send_batch($1, ARRAY['{"k":1,"x":2}','{"k":2}','[1,2]', NULL]::jsonb[])`,
      [q],
    );
    expect(ids(await db.sql(`SELECT * FROM ${S}.read($1, 0, 10, '{"k":1}')`, [q]))).toEqual([1]);
    expect(ids(await db.sql(`SELECT * FROM ${S}.read($1, 0, 10, '[1]')`, [q]))).toEqual([3]);
    expect(ids(await db.sql(`SELECT * FROM ${S}.read($1, 0, 10, '{}')`, [q]))).toEqual([
      1, 2, 3, 4,
    ]);
    expect(ids(await db.sql(`SELECT * FROM ${S}.read($1, 0, 10, NULL)`, [q]))).toEqual([
      1, 2, 3, 4,
    ]);
  });

  it('works with untyped parameters (node-postgres), as the npm pgmq-js client sends them', async () => {
    const q = await freshQueue();
    await db.sql(`SELECT ${S}.send($1, '{"u":1}'::jsonb)`, [q]);
    const rows = await db.sql<Rec>(`SELECT * FROM ${S}.read($1, $2, $3)`, [q, 15, 1]);
    expect(rows.map((r) => r.message)).toEqual([{ u: 1 }]);
    const set = await db.sql<Rec>(`SELECT * FROM ${S}.set_vt($1, $2, $3)`, [q, 1, 0]);
    expect(ids(set)).toEqual([1]);
    const ts = await db.sql<Rec>(`SELECT * FROM ${S}.set_vt($1, $2, $3)`, [
      q,
      1,
      '2040-01-01T00:00:00Z',
    ]);
    expect(ts[0]!.vt.toISOString()).toBe('2040-01-01T00:00:00.000Z');
    const arr = await db.sql<Rec>(`SELECT * FROM ${S}.set_vt($1, $2, $3)`, [q, [1, 99], 0]);
    expect(ids(arr)).toEqual([1]);
    const polled = await db.sql<Rec>(`SELECT * FROM ${S}.read_with_poll($1, $2, $3, $4, $5)`, [
      q,
      5,
      1,
      1,
      10,
    ]);
    expect(ids(polled)).toEqual([1]);
  });
});

describe('read_with_poll (PGMQ §7)', () => {
  it('gives up empty after max_poll_seconds; 0 returns empty at once even with visible messages', async () => {
    const q = await freshQueue();
    const t0 = Date.now();
    expect(await db.sql(`SELECT * FROM ${S}.read_with_poll($1, 30, 1, 1, 50)`, [q])).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    await db.sql(`SELECT ${S}.send($1, '1'::jsonb)`, [q]);
    expect(await db.sql(`SELECT * FROM ${S}.read_with_poll($1, 30, 1, 0, 50)`, [q])).toEqual([]);
    expect(ids(await db.sql(`SELECT * FROM ${S}.read_with_poll($1, 30, 1)`, [q]))).toEqual([1]);
  });
});

describe('pop, set_vt, archive, delete (PGMQ §7)', () => {
  it('pop deletes the lowest visible messages and returns them unchanged', async () => {
    const q = await freshQueue();
    await db.sql(`SELECT ${S}.send_batch($1, ARRAY['1','2','3','4']::jsonb[])`, [q]);
    await db.sql(`SELECT * FROM ${S}.read($1, 0, 1)`, [q]);
    const [first] = await db.sql<Rec>(`SELECT * FROM ${S}.pop($1)`, [q]);
    expect(first).toMatchObject({ msg_id: '1', read_ct: 1, message: 1 });
    await db.sql(`SELECT * FROM ${S}.read($1, 100, 1)`, [q]); // 2 in flight
    expect(ids(await db.sql(`SELECT * FROM ${S}.pop($1, 5)`, [q]))).toEqual([3, 4]);
    expect(await db.sql(`SELECT count(*)::int AS n FROM ${S}.a_${q}`)).toEqual([{ n: 0 }]);
    await db.sql(`SELECT ${S}.send_batch($1, ARRAY['5','6']::jsonb[])`, [q]);
    expect(ids(await db.sql(`SELECT * FROM ${S}.pop($1, NULL)`, [q]))).toEqual([5, 6]);
  });

  it('set_vt: all overloads, regardless of visibility; missing ids are absent; read_ct unchanged', async () => {
    const q = await freshQueue();
    await db.sql(`SELECT ${S}.send_batch($1, ARRAY['1','2','3']::jsonb[])`, [q]);
    const before = await now();
    const [a] = await db.sql<Rec>(`SELECT * FROM ${S}.set_vt($1, 1::bigint, 100)`, [q]);
    expect(a!.vt.getTime() - before).toBeGreaterThanOrEqual(99_000);
    expect(a!.read_ct).toBe(0);
    const [b] = await db.sql<Rec>(
      `SELECT * FROM ${S}.set_vt($1, 1::bigint, '2035-05-05Z'::timestamptz)`,
      [q],
    );
    expect(b!.vt.toISOString()).toBe('2035-05-05T00:00:00.000Z');
    const c = await db.sql<Rec>(`SELECT * FROM ${S}.set_vt($1, ARRAY[2,3,77]::bigint[], 0)`, [q]);
    expect(ids(c)).toEqual([2, 3]);
    const d = await db.sql<Rec>(
      `SELECT * FROM ${S}.set_vt($1, ARRAY[1,2]::bigint[], '2036-06-06Z'::timestamptz)`,
      [q],
    );
    expect(d.map((r) => r.vt.toISOString())).toEqual([
      '2036-06-06T00:00:00.000Z',
      '2036-06-06T00:00:00.000Z',
    ]);
    expect(await db.sql(`SELECT * FROM ${S}.set_vt($1, 999::bigint, 0)`, [q])).toEqual([]);
    expect(ids(await db.sql(`SELECT * FROM ${S}.read($1, 10, 10)`, [q]))).toEqual([3]);
  });

  it('archive moves rows (copying every column, archived_at = now()); true/false and the ids archived', async () => {
    const q = await freshQueue();
    await db.sql(
      `SELECT ${S}.send_batch($1, ARRAY['{"a":1}','{"a":2}','{"a":3}']::jsonb[], ARRAY['{"h":1}',NULL,NULL]::jsonb[])`,
      [q],
    );
    const [read] = await db.sql<Rec>(`SELECT * FROM ${S}.read($1, 100, 1)`, [q]);
    expect(await db.sql(`SELECT ${S}.archive($1, 1::bigint) AS ok`, [q])).toEqual([{ ok: true }]);
    expect(await db.sql(`SELECT ${S}.archive($1, 1::bigint) AS ok`, [q])).toEqual([{ ok: false }]);
    expect(await db.sql(`SELECT ${S}.archive($1, NULL::bigint) AS ok`, [q])).toEqual([
      { ok: false },
    ]);
    const [arch] = await db.sql<Rec & { archived_at: Date }>(`SELECT * FROM ${S}.a_${q}`);
    expect(arch).toMatchObject({ msg_id: '1', read_ct: 1, message: { a: 1 }, headers: { h: 1 } });
    expect(arch!.vt.getTime()).toBe(read!.vt.getTime());
    expect(arch!.last_read_at!.getTime()).toBe(read!.last_read_at!.getTime());
    expect(arch!.archived_at).toBeInstanceOf(Date);
    const many = await db.sql<{ archive: string }>(
      `SELECT * FROM ${S}.archive($1, ARRAY[2,3,4]::bigint[])`,
      [q],
    );
    expect(many.map((r) => Number(r.archive)).sort()).toEqual([2, 3]);
    expect(await db.sql(`SELECT count(*)::int AS n FROM ${S}.q_${q}`)).toEqual([{ n: 0 }]);
  });

  it('delete removes for good; true/false and the ids deleted', async () => {
    const q = await freshQueue();
    await db.sql(`SELECT ${S}.send_batch($1, ARRAY['1','2','3']::jsonb[])`, [q]);
    await db.sql(`SELECT * FROM ${S}.read($1, 100, 3)`, [q]);
    expect(await db.sql(`SELECT ${S}.delete($1, 1::bigint) AS ok`, [q])).toEqual([{ ok: true }]);
    expect(await db.sql(`SELECT ${S}.delete($1, 1::bigint) AS ok`, [q])).toEqual([{ ok: false }]);
    const many = await db.sql<{ delete: string }>(
      `SELECT * FROM ${S}.delete($1, ARRAY[2,3,9]::bigint[])`,
      [q],
    );
    expect(many.map((r) => Number(r.delete)).sort()).toEqual([2, 3]);
    expect(await db.sql(`SELECT count(*)::int AS n FROM ${S}.a_${q}`)).toEqual([{ n: 0 }]);
  });
});

describe('metrics (PGMQ §7)', () => {
  it('counts, ages, total_messages and scrape_time as PGMQ defines them', async () => {
    const q = await freshQueue();
    const [empty] = await db.sql(`SELECT * FROM ${S}.metrics($1)`, [q]);
    expect(empty).toMatchObject({
      queue_name: q,
      queue_length: '0',
      newest_msg_age_sec: null,
      oldest_msg_age_sec: null,
      total_messages: '0',
      queue_visible_length: '0',
    });
    await db.sql(`SELECT ${S}.send_batch($1, ARRAY['1','2','3','4']::jsonb[])`, [q]);
    await db.sql(`SELECT ${S}.send($1, '5'::jsonb, 3600)`, [q]);
    await db.sql(`SELECT * FROM ${S}.read($1, 60, 1)`, [q]);
    await db.sql(`SELECT ${S}.delete($1, 2::bigint)`, [q]);
    const [m] = await db.sql(`SELECT * FROM ${S}.metrics($1)`, [q]);
    expect(m).toMatchObject({
      queue_name: q,
      queue_length: '4',
      queue_visible_length: '2',
      total_messages: '5',
      newest_msg_age_sec: 0,
      oldest_msg_age_sec: 0,
    });
    expect((m as { scrape_time: Date }).scrape_time).toBeInstanceOf(Date);
    const all = await db.sql<{ queue_name: string }>(`SELECT * FROM ${S}.metrics_all()`);
    expect(all.map((r) => r.queue_name)).toContain(q);
    const fields = await db.sql<{ attname: string }>(
      `SELECT a.attname FROM pg_attribute a JOIN pg_type t ON t.typrelid = a.attrelid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = $1 AND t.typname = 'metrics_result' AND a.attnum > 0 ORDER BY a.attnum`,
      [S],
    );
    expect(fields.map((f) => f.attname)).toEqual([
      'queue_name',
      'queue_length',
      'newest_msg_age_sec',
      'oldest_msg_age_sec',
      'total_messages',
      'scrape_time',
      'queue_visible_length',
      'default_partition_length',
    ]);
  });

  it('keeps the argument as queue_name and reports ages in whole seconds', async () => {
    const q = await freshQueue();
    await db.sql(
      `INSERT INTO ${S}.q_${q} (vt, message, enqueued_at) VALUES (now(), '1', now() - interval '90.6 seconds')`,
    );
    const [m] = await db.sql(`SELECT * FROM ${S}.metrics($1)`, [q.toUpperCase()]);
    expect(m).toMatchObject({
      queue_name: q.toUpperCase(),
      oldest_msg_age_sec: 91,
      newest_msg_age_sec: 91,
    });
  });
});

describe('payloads', () => {
  it('unicode and a 1 MB payload round-trip byte for byte', async () => {
    const q = await freshQueue();
    const unicode = {
      text: 'Grüße, 你好, مرحبا, 🚢⚓',
      nul: 'tab\there',
      nested: { ключ: ['ü', 'ß'] },
    };
    const big = { blob: 'x'.repeat(1024 * 1024), n: 1 };
    await db.sql(`SELECT ${S}.send($1, $2::jsonb, $3::jsonb)`, [
      q,
      JSON.stringify(unicode),
      JSON.stringify({ 'h-ü': '✓' }),
    ]);
    await db.sql(`SELECT ${S}.send($1, $2::jsonb)`, [q, JSON.stringify(big)]);
    const rows = await db.sql<Rec>(`SELECT * FROM ${S}.read($1, 30, 2)`, [q]);
    const byId = new Map(rows.map((r) => [Number(r.msg_id), r]));
    expect(byId.get(1)!.message).toEqual(unicode);
    expect(byId.get(1)!.headers).toEqual({ 'h-ü': '✓' });
    expect(byId.get(2)!.message).toEqual(big);
  });
});
