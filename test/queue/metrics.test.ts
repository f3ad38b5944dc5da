import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { useTestDatabase } from '../support/db.js';
import { QueueClient } from '../../src/index.js';

const db = useTestDatabase();
const S = () => db.queueSchema;

interface Exact {
  queue_length: string;
  queue_visible_length: string;
  newest: number | null;
  oldest: number | null;
}

/** metrics() and the same figures counted the slow way, in one transaction (same now()). */
async function both(queue: string): Promise<{ metrics: Record<string, unknown>; exact: Exact }> {
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    const metrics = (await c.query(`SELECT * FROM ${S()}.metrics($1)`, [queue])).rows[0] as Record<
      string,
      unknown
    >;
    const exact = (
      await c.query<Exact>(
        `SELECT count(*) AS queue_length, count(*) FILTER (WHERE vt <= now()) AS queue_visible_length,
                round(extract(epoch FROM now() - max(enqueued_at)))::integer AS newest,
                round(extract(epoch FROM now() - min(enqueued_at)))::integer AS oldest
           FROM ${S()}.q_${queue}`,
      )
    ).rows[0]!;
    await c.query('COMMIT');
    return { metrics, exact };
  } finally {
    c.release();
  }
}

async function expectExact(queue: string): Promise<void> {
  const { metrics, exact } = await both(queue);
  expect({
    queue_length: metrics.queue_length,
    queue_visible_length: metrics.queue_visible_length,
    newest: metrics.newest_msg_age_sec,
    oldest: metrics.oldest_msg_age_sec,
  }).toEqual(exact);
}

/** What one metrics() call read from the queue's tables, from this transaction's own statistics. */
async function tuplesRead(
  c: pg.PoolClient,
  queue: string,
): Promise<{ seqScans: number; seqTuples: number; indexTuples: number }> {
  const [t] = (
    await c.query<{ seq_scan: string; seq_tup_read: string }>(
      `SELECT coalesce(sum(seq_scan), 0) AS seq_scan, coalesce(sum(seq_tup_read), 0) AS seq_tup_read
         FROM pg_stat_xact_user_tables WHERE relid = $1::regclass
            OR relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)`,
      [`${S()}.q_${queue}`],
    )
  ).rows;
  const [i] = (
    await c.query<{ idx_tup_read: string }>(
      `SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(i.indexrelid)), 0) AS idx_tup_read
         FROM pg_index i WHERE i.indrelid = $1::regclass
            OR i.indrelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)`,
      [`${S()}.q_${queue}`],
    )
  ).rows;
  return {
    seqScans: Number(t!.seq_scan),
    seqTuples: Number(t!.seq_tup_read),
    indexTuples: Number(i!.idx_tup_read),
  };
}

describe('fast metrics', () => {
  it('stay exact through every operation', async () => {
    const client = db.queueClient();
    await client.createQueue('fm');
    await client.sendBatch(
      'fm',
      Array.from({ length: 20 }, (_, i) => i),
    );
    await client.enableFastMetrics('fm'); // counts the 20 already there
    expect(await client.fastMetricsEnabled('fm')).toBe(true);
    await client.enableFastMetrics('fm'); // idempotent
    await expectExact('fm');

    await client.send('fm', { one: 1 });
    await client.send('fm', { later: 1 }, { delaySeconds: 3600 });
    await client.read('fm', { qty: 5, visibilityTimeoutSeconds: 60 });
    await expectExact('fm');
    await client.delete('fm', [1, 2, 99]);
    await client.archive('fm', [3, 4]);
    await client.pop('fm', { qty: 3 });
    await db.sql(`SELECT ${S()}.delete('fm', 10::bigint), ${S()}.archive('fm', 11::bigint)`);
    await client.setVisibilityTimeout('fm', [5], 0);
    await expectExact('fm');
    // A rolled-back send counts nothing.
    await expect(
      client.transaction(async (tx) => {
        await client.sendBatch('fm', [1, 2, 3], { tx });
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    await expectExact('fm');
    // Maintenance folds the deltas; the figures do not move.
    await client.runMaintenance('fm');
    const [d] = await db.sql<{ n: string }>(
      `SELECT count(*) AS n FROM ${S()}._fast_metrics_delta WHERE relid = '${S()}.q_fm'::regclass`,
    );
    expect(d!.n).toBe('0');
    await expectExact('fm');
    expect(await client.purgeQueue('fm')).toBeGreaterThan(0);
    await expectExact('fm');
    expect((await client.metrics('fm')).queueLength).toBe(0);

    expect(await client.disableFastMetrics('fm')).toBe(true);
    expect(await client.disableFastMetrics('fm')).toBe(false);
    await client.send('fm', {});
    await expectExact('fm');
  });

  it('stay exact under concurrent writers, readers and maintenance, and never fail REPEATABLE READ senders', async () => {
    const client = db.queueClient();
    await client.createQueue('fmc');
    await client.enableFastMetrics('fmc');
    const workers = Array.from({ length: 4 }, () =>
      db.track(new QueueClient({ connectionString: db.url, schema: S() })),
    );
    let stop = false;
    const maintenance = (async () => {
      while (!stop) await client.runMaintenance('fmc');
    })();
    await Promise.all(
      workers.map(async (w, n) => {
        for (let i = 0; i < 40; i++) {
          if (n % 2 === 0) {
            // Repeatable read: a shared counter row would make these fail
            // with serialization errors; appended deltas never do.
            await w.transaction(async (tx) => {
              await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
              await w.sendBatch('fmc', [i, i], { tx });
            });
          } else {
            await w.send('fmc', i);
            const got = await w.read('fmc', { qty: 2 });
            if (got.length) await w.delete('fmc', got[0]!.msgId);
          }
        }
      }),
    );
    stop = true;
    await maintenance;
    await expectExact('fmc');
  });

  it('partitioned queues: retention drops are counted', async () => {
    const client = db.queueClient();
    await client.createPartitionedQueue('fmp', {
      partitionInterval: 10,
      retentionInterval: 20,
      premake: 1,
    });
    await client.enableFastMetrics('fmp');
    await client.sendBatch(
      'fmp',
      Array.from({ length: 55 }, (_, i) => i),
    );
    await expectExact('fmp');
    const res = await client.runMaintenance('fmp');
    expect(res.rowsDropped).toBeGreaterThan(0);
    await expectExact('fmp');
    expect((await client.metrics('fmp')).defaultPartitionLength).toBe(0);
    // The all-queues form, as pg_cron would call it.
    const all = await db.sql<{ queue_name: string; skipped: boolean }>(
      `SELECT * FROM ${S()}.run_maintenance()`,
    );
    expect(all.find((r) => r.queue_name === 'fmp')).toMatchObject({ skipped: false });
    expect(await client.purgeQueue('fmp')).toBeGreaterThan(0);
    await expectExact('fmp');
    expect((await client.metrics('fmp')).queueLength).toBe(0);
  });

  it('do not scan the table: tuples read are those in flight, not the backlog', async () => {
    const client = db.queueClient();
    await client.createQueue('fmbig');
    await db.sql(`SELECT ${S()}.send_batch('fmbig', array_fill('{"x":1}'::jsonb, ARRAY[20000]))`);
    await client.enableFastMetrics('fmbig');
    await client.read('fmbig', { qty: 7, visibilityTimeoutSeconds: 600 });
    await db.sql(`VACUUM ANALYZE ${S()}.q_fmbig`);

    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      const m = (await c.query(`SELECT * FROM ${S()}.metrics('fmbig')`)).rows[0];
      const fast = await tuplesRead(c, 'fmbig');
      await c.query('COMMIT');
      expect(m).toMatchObject({ queue_length: '20000', queue_visible_length: '19993' });
      expect(fast.seqScans).toBe(0);
      expect(fast.seqTuples).toBe(0);
      // 7 invisible rows on the vt index, plus the first/last enqueued_at entries.
      expect(fast.indexTuples).toBeLessThanOrEqual(20);

      await client.disableFastMetrics('fmbig');
      await c.query('BEGIN');
      await c.query(`SELECT * FROM ${S()}.metrics('fmbig')`);
      const slow = await tuplesRead(c, 'fmbig');
      await c.query('COMMIT');
      expect(slow.seqTuples + slow.indexTuples).toBeGreaterThanOrEqual(20000);
    } finally {
      c.release();
    }
  });
});
