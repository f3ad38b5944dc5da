import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { QueueClient, QueueNotFoundError } from '../../src/index.js';

// QueueClient.metrics() by default (sql/queue/0008_metrics.sql, metrics_fast):
// exact on a small queue or with fast metrics, otherwise an estimate that
// reads no table sequentially; `{ exact: true }` is PGMQ's metrics().

const db = useTestDatabase();
const S = db.queueSchema;
const client = new QueueClient({ connectionString: db.url, schema: S });
afterAll(() => client.close());

async function fill(q: string, n: number): Promise<void> {
  await db.sql(`SELECT ${S}.create($1)`, [q]);
  await db.sql(`SELECT ${S}.send_batch($1, array_fill('{"a":1}'::jsonb, ARRAY[$2::int]))`, [q, n]);
}

/** Runs `sql` in a transaction and returns its row with the sequential scans it made of q's table. */
async function withSeqScans(q: string, sql: string, params: unknown[]) {
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    const scans = async (): Promise<number> =>
      Number(
        (
          await c.query<{ n: string }>(
            `SELECT coalesce(sum(seq_scan), 0) AS n FROM pg_stat_xact_user_tables WHERE schemaname = $1 AND relname = $2`,
            [S, `q_${q}`],
          )
        ).rows[0]!.n,
      );
    const before = await scans();
    const row = (await c.query<Record<string, unknown>>(sql, params)).rows[0]!;
    return { row, seqScans: (await scans()) - before };
  } finally {
    await c.query('ROLLBACK');
    c.release();
  }
}

describe('metrics() default: exact where cheap, estimated otherwise', () => {
  it('a small queue: exact, the same figures as PGMQ metrics()', async () => {
    await fill('md_small', 50);
    await db.sql(`SELECT ${S}.set_vt('md_small', ARRAY[1,2,3]::bigint[], 600)`);
    const dflt = await client.metrics('md_small');
    const exact = await client.metrics('md_small', { exact: true });
    expect(dflt.exact).toBe(true);
    expect(exact.exact).toBe(true);
    expect({ ...dflt, scrapeTime: null }).toEqual({ ...exact, scrapeTime: null });
    expect(dflt.queueLength).toBe(50);
    expect(dflt.queueVisibleLength).toBe(47);
  });

  it('a large queue: an estimate, no sequential scan; { exact: true } counts', async () => {
    await fill('md_large', 14_000);
    await db.sql(`SELECT ${S}.delete('md_large', ARRAY(SELECT generate_series(1, 2000)::bigint))`);
    await db.sql(
      `SELECT ${S}.set_vt('md_large', ARRAY(SELECT generate_series(5001, 5100)::bigint), 600)`,
    );
    await db.sql(`ANALYZE ${S}.q_md_large`);
    const est = await client.metrics('md_large');
    expect(est.exact).toBe(false);
    expect(est.queueLength).toBeGreaterThan(12_000 * 0.8);
    expect(est.queueLength).toBeLessThan(12_000 * 1.2);
    expect(est.queueVisibleLength).toBe(est.queueLength - 100);
    expect(est.totalMessages).toBe(14_000);
    expect(est.oldestMsgAgeSec).not.toBeNull();
    expect(est.newestMsgAgeSec).not.toBeNull();
    const exact = await client.metrics('md_large', { exact: true });
    expect(exact).toMatchObject({ exact: true, queueLength: 12_000, queueVisibleLength: 11_900 });

    const scanned = await withSeqScans('md_large', `SELECT * FROM ${S}.metrics_fast($1)`, [
      'md_large',
    ]);
    expect(scanned.row.exact).toBe(false);
    expect(scanned.seqScans).toBe(0);
    const counted = await withSeqScans('md_large', `SELECT * FROM ${S}.metrics($1)`, ['md_large']);
    expect(counted.seqScans).toBeGreaterThan(0); // the check above can fail
  });

  it('a queue drained since its statistics were taken: exact again, without a scan', async () => {
    await fill('md_drained', 14_000);
    await db.sql(`ANALYZE ${S}.q_md_drained`); // the statistics say 14,000 rows
    await db.sql(
      `SELECT ${S}.delete('md_drained', ARRAY(SELECT generate_series(1, 13990)::bigint))`,
    );
    const scanned = await withSeqScans('md_drained', `SELECT * FROM ${S}.metrics_fast($1)`, [
      'md_drained',
    ]);
    expect(scanned.row).toMatchObject({
      exact: true,
      queue_length: '10',
      queue_visible_length: '10',
      total_messages: '14000',
    });
    expect(scanned.seqScans).toBe(0);
    const dflt = await client.metrics('md_drained');
    const exact = await client.metrics('md_drained', { exact: true });
    expect({ ...dflt, scrapeTime: null }).toEqual({ ...exact, scrapeTime: null });
  });

  it('exact_below decides; with fast metrics a large queue is exact without a scan', async () => {
    await fill('md_fast', 3000);
    await db.sql(`ANALYZE ${S}.q_md_fast`);
    const low = await db.sql<{ exact: boolean; queue_length: string }>(
      `SELECT exact, queue_length FROM ${S}.metrics_fast('md_fast', 100)`,
    );
    expect(low[0]!.exact).toBe(false);
    await client.enableFastMetrics('md_fast');
    const scanned = await withSeqScans('md_fast', `SELECT * FROM ${S}.metrics_fast($1, 100)`, [
      'md_fast',
    ]);
    expect(scanned.row).toMatchObject({ exact: true, queue_length: '3000' });
    expect(scanned.seqScans).toBe(0);
  });

  it('metricsAll() carries the flag; a missing queue is a typed error', async () => {
    const all = await client.metricsAll();
    const small = all.find((m) => m.queueName === 'md_small');
    expect(small).toMatchObject({ exact: true, queueLength: 50 });
    await expect(client.metrics('md_missing')).rejects.toBeInstanceOf(QueueNotFoundError);
  });
});
