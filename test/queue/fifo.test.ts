import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { InvalidArgumentError, QueueNotFoundError } from '../../src/errors.js';
import { testClient } from '../support/connections.js';

const db = useTestDatabase();
const S = db.queueSchema;

const ids = (rows: { msg_id: string }[]): number[] => rows.map((r) => Number(r.msg_id));
const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);

/** The reference's worked example (§8): A = {1, 2, 5}, B = {3, 6}, default group = {4}. */
async function workedExample(q: string): Promise<void> {
  await db.sql(`SELECT ${S}.create($1)`, [q]);
  const groups = ['A', 'A', 'B', null, 'A', 'B'];
  for (const g of groups) {
    if (g)
      await db.sql(
        `SELECT ${S}.send($1, '{}'::jsonb, jsonb_build_object('x-pgmq-group', $2::text))`,
        [q, g],
      );
    else await db.sql(`SELECT ${S}.send($1, '{}'::jsonb)`, [q]);
  }
}

/** Runs a read in a transaction that is rolled back, so each call sees the same queue. */
async function peek(sql: string, params: unknown[]): Promise<number[]> {
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    const res = await c.query<{ msg_id: string }>(sql, params);
    return ids(res.rows);
  } finally {
    await c.query('ROLLBACK');
    c.release();
  }
}

describe('FIFO group reads: the reference worked example', () => {
  it('read_grouped, read_grouped_rr and read_grouped_head return exactly the table', async () => {
    await workedExample('we');
    const g = (fn: string, qty: number): Promise<number[]> =>
      peek(`SELECT msg_id FROM ${S}.${fn}('we', 30, $1)`, [qty]);
    expect(sorted(await g('read_grouped', 4))).toEqual([1, 2, 3, 5]);
    expect(sorted(await g('read_grouped', 10))).toEqual([1, 2, 3, 4, 5, 6]);
    // rr returns rows in selection order: that order is part of the API.
    expect(await g('read_grouped_rr', 5)).toEqual([1, 3, 4, 2, 6]);
    expect(await g('read_grouped_rr', 10)).toEqual([1, 3, 4, 2, 6, 5]);
    expect(sorted(await g('read_grouped_head', 10))).toEqual([1, 3, 4]);
    expect(sorted(await g('read_grouped_head', 2))).toEqual([1, 3]);
  });

  it('blocks group A while message 1 is invisible, and a group whose head is delayed', async () => {
    await workedExample('blk');
    await db.sql(`SELECT ${S}.set_vt('blk', 1::bigint, 3600)`);
    const g = (fn: string): Promise<number[]> =>
      peek(`SELECT msg_id FROM ${S}.${fn}('blk', 30, 10)`, []);
    expect(sorted(await g('read_grouped'))).toEqual([3, 4, 6]);
    expect(sorted(await g('read_grouped_rr'))).toEqual([3, 4, 6]);
    expect(sorted(await g('read_grouped_head'))).toEqual([3, 4]);
    // Group C = {7 delayed 1 h, 8 visible}: blocked in all three.
    await db.sql(`SELECT ${S}.send('blk', '{}'::jsonb, '{"x-pgmq-group":"C"}'::jsonb, 3600)`);
    await db.sql(`SELECT ${S}.send('blk', '{}'::jsonb, '{"x-pgmq-group":"C"}'::jsonb)`);
    expect(sorted(await g('read_grouped'))).toEqual([3, 4, 6]);
    expect(sorted(await g('read_grouped_rr'))).toEqual([3, 4, 6]);
    expect(sorted(await g('read_grouped_head'))).toEqual([3, 4]);
  });

  it('quirk: read_grouped takes visible messages after a later in-flight one (1 visible, 2 in flight, 5 visible)', async () => {
    await workedExample('qk');
    await db.sql(`SELECT ${S}.set_vt('qk', 2::bigint, 3600)`);
    expect(sorted(await peek(`SELECT msg_id FROM ${S}.read_grouped('qk', 30, 2)`, []))).toEqual([
      1, 5,
    ]);
  });

  it('a number 5 and a string "5" are the same group; NULL headers are the default group', async () => {
    await db.sql(`SELECT ${S}.create('num')`);
    await db.sql(`SELECT ${S}.send('num', '{}'::jsonb, '{"x-pgmq-group":5}'::jsonb)`);
    await db.sql(`SELECT ${S}.send('num', '{}'::jsonb, '{"x-pgmq-group":"5"}'::jsonb)`);
    await db.sql(`SELECT ${S}.send('num', '{}'::jsonb, '{"other":1}'::jsonb)`);
    await db.sql(`SELECT ${S}.send('num', '{}'::jsonb)`);
    expect(
      sorted(await peek(`SELECT msg_id FROM ${S}.read_grouped_head('num', 30, 10)`, [])),
    ).toEqual([1, 3]);
  });
});

describe('FIFO group reads: updates, vt forms, polling, errors', () => {
  it('updates what it returns like read (vt, read_ct, last_read_at) and the timestamptz form sets vt exactly', async () => {
    await db.sql(`SELECT ${S}.create('upd')`);
    await db.sql(`SELECT ${S}.send_batch('upd', array['{}','{}']::jsonb[])`);
    const [r] = await db.sql<{ read_ct: number; vt: Date; last_read_at: Date; ok: boolean }>(
      `SELECT read_ct, vt, last_read_at,
              vt BETWEEN clock_timestamp() + interval '59 s' AND clock_timestamp() + interval '61 s' AS ok
         FROM ${S}.read_grouped('upd', 60, 1)`,
    );
    expect(r).toMatchObject({ read_ct: 1, ok: true });
    expect(r!.last_read_at).toBeInstanceOf(Date);
    const at = '2030-01-02T03:04:05.678Z';
    for (const fn of ['read_grouped', 'read_grouped_rr', 'read_grouped_head']) {
      await db.sql(`SELECT ${S}.set_vt('upd', ARRAY[1,2]::bigint[], 0)`);
      const rows = await db.sql<{ vt: Date }>(
        `SELECT vt FROM ${S}.${fn}('upd', $1::timestamptz, 1)`,
        [at],
      );
      expect(rows.map((x) => x.vt.toISOString())).toEqual([at]);
    }
  });

  it('_with_poll forms: max_poll_seconds 0 returns empty at once; they wait for a message that becomes visible', async () => {
    await db.sql(`SELECT ${S}.create('poll')`);
    await db.sql(`SELECT ${S}.send('poll', '{}'::jsonb)`);
    for (const fn of [
      'read_grouped_with_poll',
      'read_grouped_rr_with_poll',
      'read_grouped_head_with_poll',
    ]) {
      expect(await db.sql(`SELECT * FROM ${S}.${fn}('poll', 30, 1, 0)`)).toHaveLength(0);
    }
    // Message 2 becomes visible after ~0.3 s; each poll form must pick it up within its 5 s window.
    for (const fn of [
      'read_grouped_with_poll',
      'read_grouped_rr_with_poll',
      'read_grouped_head_with_poll',
    ]) {
      await db.sql(`SELECT ${S}.purge_queue('poll')`);
      await db.sql(`SELECT ${S}.send('poll', '{}'::jsonb, clock_timestamp() + interval '300 ms')`);
      const rows = await db.sql(`SELECT * FROM ${S}.${fn}('poll', 30, 1, 5, 20)`);
      expect(rows).toHaveLength(1);
      const ts = await db.sql(`SELECT * FROM ${S}.${fn}('poll', now() + interval '1 h', 1, 0, 20)`);
      expect(ts).toHaveLength(0);
    }
  });

  it('raises 42P01 for a missing queue and 2201W for a negative qty (rr: no rows); qty 0 returns nothing', async () => {
    await db.sql(`SELECT ${S}.create('err')`);
    await db.sql(`SELECT ${S}.send('err', '{}'::jsonb)`);
    for (const fn of ['read_grouped', 'read_grouped_rr', 'read_grouped_head']) {
      await expect(db.sql(`SELECT * FROM ${S}.${fn}('nope', 30, 1)`)).rejects.toMatchObject({
        code: '42P01',
      });
      // read_grouped_rr's selection has no LIMIT in the reference: nothing,
      // no error (see test/queue/compat-edge-cases.test.ts).
      if (fn === 'read_grouped_rr') {
        expect(await db.sql(`SELECT * FROM ${S}.${fn}('err', 30, -1)`)).toHaveLength(0);
      } else {
        await expect(db.sql(`SELECT * FROM ${S}.${fn}('err', 30, -1)`)).rejects.toMatchObject({
          code: '2201W',
          message: 'LIMIT must not be negative',
        });
      }
      expect(await db.sql(`SELECT * FROM ${S}.${fn}('err', 30, 0)`)).toHaveLength(0);
    }
  });

  it('untyped parameters (node-postgres) resolve through the text-vt shims', async () => {
    await db.sql(`SELECT ${S}.create('untyped')`);
    // One group per message, so every read below finds an unblocked group.
    await db.sql(
      `SELECT ${S}.send_batch('untyped', array_agg('{}'::jsonb), array_agg(jsonb_build_object('x-pgmq-group', g)))
         FROM generate_series(1, 7) g`,
    );
    const c = testClient({ connectionString: db.url });
    await c.connect();
    try {
      // pg sends these parameters with no type: integer/timestamptz overloads would be ambiguous (42725).
      for (const fn of ['read_grouped', 'read_grouped_rr', 'read_grouped_head']) {
        const r = await c.query(`SELECT * FROM ${S}.${fn}($1, $2, $3)`, ['untyped', 30, 1]);
        expect(r.rows).toHaveLength(1);
      }
      for (const fn of [
        'read_grouped_with_poll',
        'read_grouped_rr_with_poll',
        'read_grouped_head_with_poll',
      ]) {
        const r = await c.query(`SELECT * FROM ${S}.${fn}($1, $2, $3, $4, $5)`, [
          'untyped',
          30,
          1,
          1,
          10,
        ]);
        expect(r.rows).toHaveLength(1);
      }
      const at = '2031-05-06T07:08:09.000Z';
      const r = await c.query<{ vt: Date }>(`SELECT vt FROM ${S}.read_grouped($1, $2, $3)`, [
        'untyped',
        at,
        1,
      ]);
      expect(r.rows[0]!.vt.toISOString()).toBe(at);
    } finally {
      await c.end();
    }
  });

  it('create_fifo_index and create_fifo_indexes_all make q_<name>_fifo_idx (GIN on headers)', async () => {
    await db.sql(`SELECT ${S}.create('Fidx')`);
    await db.sql(`SELECT ${S}.create('fidx2')`);
    await db.sql(`SELECT ${S}.create_fifo_index('Fidx')`);
    await db.sql(`SELECT ${S}.create_fifo_index('Fidx')`); // idempotent
    await db.sql(`SELECT ${S}.create_fifo_indexes_all()`);
    const rows = await db.sql<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname LIKE '%fifo_idx' ORDER BY 1`,
      [S],
    );
    expect(rows.map((r) => r.indexname)).toEqual(
      expect.arrayContaining(['q_fidx_fifo_idx', 'q_fidx2_fifo_idx']),
    );
    expect(rows[0]!.indexdef).toMatch(/USING gin \(headers\)/);
    await expect(db.sql(`SELECT ${S}.create_fifo_index('missing')`)).rejects.toMatchObject({
      code: '42P01',
    });
  });
});

describe('FIFO group reads: extension point and vt timing', () => {
  it('every group read runs _before_read(queue_name) first, as read does', async () => {
    await db.sql(`SELECT ${S}.create('hook')`);
    await db.sql(`CREATE TABLE hook_log (queue_name text)`);
    await db.sql(
      `CREATE OR REPLACE FUNCTION ${S}._before_read(queue_name text) RETURNS void LANGUAGE sql AS
         $f$ INSERT INTO public.hook_log VALUES (queue_name) $f$`,
    );
    try {
      // vt 0 keeps the message visible, so every call (poll forms too) reads exactly once.
      await db.sql(`SELECT ${S}.send('hook', '{}'::jsonb)`);
      for (const fn of ['read_grouped', 'read_grouped_rr', 'read_grouped_head']) {
        expect(await db.sql(`SELECT * FROM ${S}.${fn}('hook', 0, 1)`)).toHaveLength(1);
        expect(
          await db.sql(`SELECT * FROM ${S}.${fn}_with_poll('hook', 0, 1, 1, 10)`),
        ).toHaveLength(1);
      }
      expect(
        await db.sql(`SELECT count(*)::int AS n FROM hook_log WHERE queue_name = 'hook'`),
      ).toEqual([{ n: 6 }]);
    } finally {
      await db.sql(`CREATE OR REPLACE FUNCTION ${S}._before_read(queue_name text) RETURNS void LANGUAGE plpgsql AS
                    $f$ BEGIN RETURN; END; $f$`);
    }
  });

  it('the integer vt of a poll form is counted from the call start, not from the moment of the read', async () => {
    await db.sql(`SELECT ${S}.create('vtstart')`);
    await db.sql(`SELECT ${S}.send('vtstart', '{}'::jsonb, clock_timestamp() + interval '500 ms')`);
    const [r] = await db.sql<{ offset_s: number }>(
      `WITH t AS (SELECT clock_timestamp() AS started)
       SELECT extract(epoch FROM (g.vt - t.started))::float8 AS offset_s
         FROM t, ${S}.read_grouped_with_poll('vtstart', 10, 1, 5, 20) g`,
    );
    // The read happened ~0.5 s after the start; vt is start + 10 s, not read + 10 s.
    expect(r!.offset_s).toBeGreaterThan(9.9);
    expect(r!.offset_s).toBeLessThan(10.2);
  });
});

describe('FIFO through the client', () => {
  it('readGrouped / RoundRobin / Head (+ poll forms) map to the SQL and keep rr order', async () => {
    const client = db.queueClient();
    await workedExample('cli');
    const rr = await client
      .transaction((tx) =>
        client.readGroupedRoundRobin('cli', { qty: 5, tx }).then(async (m) => {
          await tx.query('SELECT 1');
          throw Object.assign(new Error('rollback'), { result: m });
        }),
      )
      .catch((e: { result: { msgId: number }[] }) => e.result);
    expect(rr.map((m) => m.msgId)).toEqual([1, 3, 4, 2, 6]);
    const head = await client.readGroupedHead('cli', { qty: 10 });
    expect(sorted(head.map((m) => m.msgId))).toEqual([1, 3, 4]);
    expect(head.find((m) => m.msgId === 1)!.headers).toEqual({ 'x-pgmq-group': 'A' });
    // A, B and the default group are all blocked now.
    expect(await client.readGrouped('cli', { qty: 10 })).toEqual([]);
    expect(await client.readGroupedWithPoll('cli', { qty: 10, maxPollSeconds: 0 })).toEqual([]);
    await client.delete('cli', [1, 3, 4]);
    const until = new Date(Date.now() + 3_600_000);
    const next = await client.readGroupedWithPoll('cli', {
      qty: 10,
      visibleUntil: until,
      maxPollSeconds: 1,
    });
    expect(sorted(next.map((m) => m.msgId))).toEqual([2, 5, 6]);
    expect(Math.abs(next[0]!.visibleAt.getTime() - until.getTime())).toBeLessThan(2);
    expect(await client.readGroupedRoundRobinWithPoll('cli', { maxPollSeconds: 0 })).toEqual([]);
    expect(await client.readGroupedHeadWithPoll('cli', { maxPollSeconds: 0 })).toEqual([]);
    await client.createFifoIndex('cli');
    await client.createFifoIndexesAll();
    await expect(client.readGrouped('cli', { qty: -1 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(client.readGrouped('nope_q')).rejects.toBeInstanceOf(QueueNotFoundError);
    await expect(
      client.readGrouped('cli', { visibleUntil: until, visibilityTimeoutSeconds: 3 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
