// /metrics stays cheap with the task features (pause, stored results,
// flows, attempt history): one scrape, run inside one transaction, reads no
// archive and no job_results or flow table, and only bounded parts of small queues.
import { describe, expect, it } from 'vitest';
import type { Driver, Queryable } from '../../src/driver/types.js';
import type pg from 'pg';
import { Ops } from '../../src/ops/ops.js';
import { renderMetrics } from '../../src/ops/prometheus.js';
import { defineTask } from '../../src/tasks/define.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, worker } from '../tasks/helpers.js';

const db = useTestDatabase();

const big = defineTask({ name: 'ms_big', handler: async () => undefined });
const leaf = defineTask({ name: 'ms_leaf', handler: async (i: { n: number }) => i.n });
const root = defineTask({ name: 'ms_root', handler: async () => 'done' });

interface TableStat {
  rel: string;
  seq_scan: number;
  seq_tup_read: number;
  idx_scan: number;
}

async function tableStats(c: pg.PoolClient): Promise<TableStat[]> {
  const r = await c.query<Record<keyof TableStat, string>>(
    `SELECT schemaname || '.' || relname AS rel, seq_scan, seq_tup_read, coalesce(idx_scan, 0) AS idx_scan
       FROM pg_stat_xact_user_tables WHERE schemaname IN ($1, 'pgferry_tasks')`,
    [db.queueSchema],
  );
  return r.rows.map((x) => ({
    rel: x.rel,
    seq_scan: Number(x.seq_scan),
    seq_tup_read: Number(x.seq_tup_read),
    idx_scan: Number(x.idx_scan),
  }));
}

function delta(before: TableStat[], after: TableStat[]): TableStat[] {
  const was = new Map(before.map((b) => [b.rel, b]));
  return after.map((a) => {
    const b = was.get(a.rel);
    return {
      rel: a.rel,
      seq_scan: a.seq_scan - (b?.seq_scan ?? 0),
      seq_tup_read: a.seq_tup_read - (b?.seq_tup_read ?? 0),
      idx_scan: a.idx_scan - (b?.idx_scan ?? 0),
    };
  });
}

describe('/metrics with the task features', () => {
  it('reads no archive, result or flow table, and small queues only up to the exact cap', async () => {
    const client = taskClient(db);
    // A flow with stored results, and a paused task holding 12,000 jobs.
    await client.enqueueFlow({
      parent: { task: root, input: {} },
      children: [1, 2, 3].map((n) => ({ task: leaf, input: { n } })),
    });
    const w = worker(db, { tasks: [leaf, root] });
    await w.start();
    await eventually(async () => (await client.result(root, 1)).state === 'completed', 20_000);
    await w.stop();
    await client.ensure(big);
    await client.pause(big);
    for (let i = 0; i < 12; i++)
      await client.enqueueBatch(
        big,
        Array.from({ length: 1000 }, (_, n) => ({
          input: {},
          ...(n % 10 === 0 ? { options: { delayMs: 3_600_000 } } : {}),
        })),
      );
    await db.sql(`ANALYZE ${db.queueSchema}.q_ms_big`);

    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      const tx: Queryable = {
        query: async (text, params) => {
          const r = await c.query(text, params as unknown[]);
          return { rows: r.rows, rowCount: r.rowCount };
        },
      } as Queryable;
      const readDriver: Driver = {
        name: 'one transaction',
        query: tx.query,
        transaction: (fn) => fn(tx),
        listen: () => Promise.reject(new Error('not here')),
        close: async () => undefined,
      };
      const ops = db.track(
        new Ops({ connectionString: db.url, readDriver, schemas: { queue: db.queueSchema } }),
      );
      const before = await tableStats(c);
      const text = await renderMetrics(ops);
      expect(text).toContain('pgferry_task_paused{task="ms_big"} 1');
      expect(text).toMatch(/pgferry_task_jobs\{task="ms_big",state="scheduled"\} 1200\n/);
      // Deltas over the scrape (the view may also hold this backend's unflushed counts).
      const stats = delta(before, await tableStats(c));
      const of = (rel: string) => stats.find((s) => s.rel === rel);
      // The large queue's archive: the planner's estimate, no read.
      expect(of(`${db.queueSchema}.a_ms_big`)?.seq_scan ?? 0).toBe(0);
      // Results, flows: untouched by a scrape.
      for (const t of ['job_results', 'flows', 'flow_children']) {
        const s = of(`pgferry_tasks.${t}`);
        expect((s?.seq_scan ?? 0) + (s?.idx_scan ?? 0), t).toBe(0);
      }
      // Everything else, the large queue included: bounded reads (depth counted up to
      // 10,001 rows; the future-vt count is a range scan of the vt index, sql/queue/0010).
      for (const s of stats) expect(s.seq_tup_read, s.rel).toBeLessThanOrEqual(10_001);
      const q = of(`${db.queueSchema}.q_ms_big`);
      expect(q?.idx_scan ?? 0, 'the vt count uses an index').toBeGreaterThan(0);
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
  });
});
