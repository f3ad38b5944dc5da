import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';

// sql/queue/0007_fifo_speed.sql finds groups from a prefix of the queue and
// lists a group's messages through the group-key index. Its results must be
// those of the full pass (_read_grouped_core, the algorithm of 0002), which
// this compares on the same queue, in rolled-back transactions, for every
// mode, several batch sizes, with and without the index, on queues whose
// groups fit the prefix and queues whose groups do not.

const db = useTestDatabase();
const S = db.queueSchema;

async function readIds(sql: string, params: unknown[]): Promise<number[]> {
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    const res = await c.query<{ msg_id: string }>(sql, params);
    return res.rows.map((r) => Number(r.msg_id));
  } finally {
    await c.query('ROLLBACK');
    c.release();
  }
}

/** n messages; message i goes to group pick(i) (null: no group header). */
async function fill(q: string, n: number, pick: (i: number) => string | null): Promise<void> {
  await db.sql(`SELECT ${S}.create($1)`, [q]);
  const headers = Array.from({ length: n }, (_, i) => {
    const g = pick(i);
    return g === null ? null : JSON.stringify({ 'x-pgmq-group': g });
  });
  await db.sql(`SELECT ${S}.send_batch($1, array_fill('{}'::jsonb, ARRAY[$2::int]), $3::jsonb[])`, [
    q,
    n,
    headers,
  ]);
}

/** Some messages in flight (heads and others) and some finished. */
async function disturb(q: string, n: number): Promise<void> {
  await db.sql(
    `SELECT ${S}.set_vt($1, ARRAY(SELECT i::bigint FROM generate_series(1, $2) i WHERE i % 7 = 3), 600)`,
    [q, n],
  );
  await db.sql(
    `SELECT ${S}.delete($1, ARRAY(SELECT i::bigint FROM generate_series(1, $2) i WHERE i % 11 = 5))`,
    [q, n],
  );
}

const MODES = [
  ['read_grouped', 'grouped'],
  ['read_grouped_rr', 'rr'],
  ['read_grouped_head', 'head'],
] as const;

async function expectParity(q: string, qtys: number[]): Promise<void> {
  for (const [fn, mode] of MODES) {
    for (const qty of qtys) {
      const fast = await readIds(`SELECT msg_id FROM ${S}.${fn}($1, 30, $2)`, [q, qty]);
      const full = await readIds(
        `SELECT msg_id FROM ${S}._read_grouped_core($1, clock_timestamp() + interval '30 seconds', $2, $3)`,
        [q, qty, mode],
      );
      expect({ fn, qty, ids: fast }).toEqual({ fn, qty, ids: full });
    }
  }
}

describe('FIFO group reads from a prefix (0007) return what the full pass returns', () => {
  const cases: [string, number, (i: number) => string | null][] = [
    ['pfx_inter', 3000, (i) => `g${i % 1000}`], // 1,000 interleaved groups
    ['pfx_few', 3000, (i) => (i % 13 === 0 ? null : `g${(i * 7) % 5}`)], // 5 groups + default
    ['pfx_runs', 2000, (i) => `r${Math.floor(i / 150)}`], // long runs: heads far apart
    ['pfx_small', 40, (i) => (i % 4 === 0 ? null : `s${i % 3}`)], // fits the prefix
  ];
  for (const [q, n, pick] of cases) {
    it(`${q}: every mode and batch size, without and with the group-key index`, async () => {
      await fill(q, n, pick);
      await disturb(q, n);
      const qtys = [1, 3, 10, 100, 400];
      await expectParity(q, qtys);
      await db.sql(`SELECT ${S}.create_fifo_index($1)`, [q]);
      await db.sql(`ANALYZE ${S}.q_${q}`);
      await expectParity(q, qtys);
    });
  }

  it('create_fifo_index makes the btree group-key index next to the GIN one', async () => {
    await db.sql(`SELECT ${S}.create($1)`, ['pfx_idx']);
    await db.sql(`SELECT ${S}.create_fifo_index($1)`, ['pfx_idx']);
    const rows = await db.sql<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'q_pfx_idx' ORDER BY 1`,
      [S],
    );
    const grp = rows.find((r) => r.indexname === 'q_pfx_idx_fifo_grp_idx');
    expect(grp?.indexdef).toMatch(/btree .*x-pgmq-group.*msg_id/);
    expect(rows.map((r) => r.indexname)).toContain('q_pfx_idx_fifo_idx');
  });
});
