// A NULL qty in the FIFO group reads, as PGMQ's SQL (1.11.1, 1.12) answers it:
// read_grouped and read_grouped_rr keep the messages whose rank is `<= qty`,
// which is never true for NULL, so they return no rows and change nothing;
// read_grouped_head applies `LIMIT qty`, so NULL there means every head.
// (Plain read and pop: LIMIT NULL, no limit — unchanged.)
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { expectSqlError } from '../support/sql-errors.js';

const db = useTestDatabase();
const S = db.queueSchema;

/** Groups A = {1, 2, 5}, B = {3, 6}, default = {4}, all visible. */
async function fill(q: string): Promise<void> {
  await db.sql(`SELECT ${S}.create($1)`, [q]);
  for (const g of ['A', 'A', 'B', null, 'A', 'B']) {
    await db.sql(`SELECT ${S}.send($1, '1'::jsonb, $2::jsonb)`, [
      q,
      g === null ? null : JSON.stringify({ 'x-pgmq-group': g }),
    ]);
  }
}

async function readCounts(q: string): Promise<number[]> {
  const rows = await db.sql<{ read_ct: number }>(`SELECT read_ct FROM ${S}.q_${q} ORDER BY msg_id`);
  return rows.map((r) => r.read_ct);
}

const ids = (rows: { msg_id: string }[]): number[] => rows.map((r) => Number(r.msg_id)).sort();

describe('NULL qty in the group reads (PGMQ)', () => {
  it('read_grouped and read_grouped_rr return nothing and leave the queue alone', async () => {
    await fill('gnull');
    for (const fn of ['read_grouped', 'read_grouped_rr']) {
      expect(await db.sql(`SELECT * FROM ${S}.${fn}('gnull', 30, NULL)`)).toEqual([]);
      expect(
        await db.sql(`SELECT * FROM ${S}.${fn}('gnull', now() + interval '1 min', NULL)`),
      ).toEqual([]);
      // NULL vt too: nothing is taken, so nothing fails.
      expect(await db.sql(`SELECT * FROM ${S}.${fn}('gnull', NULL::integer, NULL)`)).toEqual([]);
    }
    expect(await readCounts('gnull')).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('the polling forms find nothing until their deadline', async () => {
    await fill('gnullp');
    for (const fn of ['read_grouped_with_poll', 'read_grouped_rr_with_poll']) {
      expect(await db.sql(`SELECT * FROM ${S}.${fn}('gnullp', 30, NULL, 1, 50)`)).toEqual([]);
    }
    expect(await readCounts('gnullp')).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('read_grouped_head takes every head (LIMIT NULL)', async () => {
    await fill('gnullh');
    expect(
      ids(await db.sql(`SELECT msg_id FROM ${S}.read_grouped_head('gnullh', 30, NULL)`)),
    ).toEqual([1, 3, 4]);
  });

  it('a missing queue still raises 42P01', async () => {
    for (const fn of ['read_grouped', 'read_grouped_rr']) {
      await expectSqlError(db.sql(`SELECT * FROM ${S}.${fn}('gnull_missing', 30, NULL)`), '42P01');
    }
  });
});

describe('create_fifo_index (PGMQ)', () => {
  it('a second call raises the one NOTICE PGMQ raises (its GIN index), no more', async () => {
    await db.sql(`SELECT ${S}.create('fifo_idx_twice')`);
    const client = await db.pool.connect();
    const notices: string[] = [];
    client.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      await client.query(`SELECT ${S}.create_fifo_index('fifo_idx_twice')`);
      expect(notices).toEqual([]);
      await client.query(`SELECT ${S}.create_fifo_index('fifo_idx_twice')`);
    } finally {
      client.release();
    }
    expect(notices).toEqual(['relation "q_fifo_idx_twice_fifo_idx" already exists, skipping']);
    const idx = await db.sql<{ indexname: string }>(
      `SELECT indexname FROM pg_indexes WHERE tablename = 'q_fifo_idx_twice' ORDER BY 1`,
    );
    expect(idx.map((r) => r.indexname)).toEqual([
      'q_fifo_idx_twice_fifo_grp_idx',
      'q_fifo_idx_twice_fifo_idx',
      'q_fifo_idx_twice_pkey',
      'q_fifo_idx_twice_vt_idx',
    ]);
  });
});
