// PGMQ edge cases where pgferry used to differ from the reference (PGMQ §6, §8).
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { expectSqlError } from '../support/sql-errors.js';

const db = useTestDatabase();
const S = db.queueSchema;
const INVALID = "queue name contains invalid characters: $, ;, --, or \\'";

/** A queue with two visible messages in groups A and B. */
async function grouped(q: string): Promise<void> {
  await db.sql(`SELECT ${S}.create($1)`, [q]);
  for (const g of ['A', 'B']) {
    await db.sql(
      `SELECT ${S}.send($1, '{"m":1}'::jsonb, jsonb_build_object('x-pgmq-group', $2::text))`,
      [q, g],
    );
  }
}

async function readCounts(q: string): Promise<number[]> {
  const rows = await db.sql<{ read_ct: number }>(`SELECT read_ct FROM ${S}.q_${q} ORDER BY msg_id`);
  return rows.map((r) => r.read_ct);
}

describe('drop_queue (PGMQ §6)', () => {
  it('drop_queue(NULL) returns false, like any queue whose table does not exist', async () => {
    expect(await db.sql(`SELECT ${S}.drop_queue(NULL) AS d`)).toEqual([{ d: false }]);
    // The deprecated form still returns true for it.
    expect(await db.sql(`SELECT ${S}.drop_queue(NULL, false) AS d`)).toEqual([{ d: true }]);
  });
});

describe('detach_archive (PGMQ §6)', () => {
  it('checks the queue name like every function (P0001), and stays a no-op for a valid one', async () => {
    await expectSqlError(db.sql(`SELECT ${S}.detach_archive('bad;name')`), 'P0001', INVALID);
    await expectSqlError(db.sql(`SELECT ${S}.detach_archive('a--b')`), 'P0001', INVALID);
    expect(
      await db.sql(`SELECT 1 AS ok FROM (SELECT ${S}.detach_archive('never_created')) x`),
    ).toEqual([{ ok: 1 }]);
  });
});

describe('negative qty in group reads (PGMQ §8)', () => {
  it('read_grouped_rr with a negative qty returns no rows, with messages visible or not', async () => {
    await db.sql(`SELECT ${S}.create('neg_rr_empty')`);
    expect(await db.sql(`SELECT * FROM ${S}.read_grouped_rr('neg_rr_empty', 30, -1)`)).toEqual([]);
    await grouped('neg_rr');
    expect(await db.sql(`SELECT * FROM ${S}.read_grouped_rr('neg_rr', 30, -1)`)).toEqual([]);
    expect(
      await db.sql(
        `SELECT * FROM ${S}.read_grouped_rr('neg_rr', clock_timestamp() + interval '30 s', -5)`,
      ),
    ).toEqual([]);
    expect(await readCounts('neg_rr')).toEqual([0, 0]);
  });

  it('read_grouped with a negative qty returns no rows when nothing is visible, else raises LIMIT\u2019s error', async () => {
    await db.sql(`SELECT ${S}.create('neg_g')`);
    expect(await db.sql(`SELECT * FROM ${S}.read_grouped('neg_g', 30, -1)`)).toEqual([]);
    await grouped('neg_g');
    await expectSqlError(
      db.sql(`SELECT * FROM ${S}.read_grouped('neg_g', 30, -1)`),
      '2201W',
      'LIMIT must not be negative',
    );
    // All in flight: nothing visible again.
    await db.sql(`SELECT * FROM ${S}.read('neg_g', 60, 10)`);
    expect(await db.sql(`SELECT * FROM ${S}.read_grouped('neg_g', 30, -1)`)).toEqual([]);
    expect(await readCounts('neg_g')).toEqual([1, 1]);
  });

  it('read_grouped_head with a negative qty raises LIMIT\u2019s error; a missing queue is still 42P01', async () => {
    await grouped('neg_h');
    await expectSqlError(
      db.sql(`SELECT * FROM ${S}.read_grouped_head('neg_h', 30, -1)`),
      '2201W',
      'LIMIT must not be negative',
    );
    await expectSqlError(
      db.sql(`SELECT * FROM ${S}.read_grouped_rr('no_such_q', 30, -1)`),
      '42P01',
    );
  });
});
