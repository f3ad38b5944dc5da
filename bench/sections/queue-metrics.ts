import pg from 'pg';
import { QueueClient } from '../../src/queue/client.js';
import { migrate } from '../../src/migrate/migrator.js';
import { throughput, type BenchContext, type BenchSection } from '../harness.js';

// metrics() on a large queue: PGMQ's exact scan against pgferry's fast exact
// path (enable_fast_metrics: counters kept by statement triggers plus an
// enqueued_at index), the plan of the fast path, and what fast metrics cost
// the hot path (the same client operations on a queue with and without).

const SECTION = 'queue-metrics';
const BODY = JSON.stringify({ orderId: 12345, customer: 'c-42', items: [1, 2, 3] });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function callsPerSecond(pool: pg.Pool, sql: string, calls: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = process.hrtime.bigint();
    await pool.query(sql);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return 1000 / median(times);
}

/** The plans of the statements metrics() runs inside, through auto_explain at NOTICE level. */
async function nestedPlans(url: string, sql: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const plans: string[] = [];
  c.on('notice', (n) => plans.push(n.message ?? ''));
  try {
    await c.query(`LOAD 'auto_explain'`);
    await c.query(`SET auto_explain.log_min_duration = 0`);
    await c.query(`SET auto_explain.log_nested_statements = on`);
    await c.query(`SET auto_explain.log_analyze = on`);
    await c.query(`SET auto_explain.log_timing = off`);
    await c.query(`SET auto_explain.log_level = notice`);
    await c.query(sql);
  } finally {
    await c.end();
  }
  return plans;
}

/** Median over rounds; `fn` gets the round number to alternate which side runs first (no order bias). */
async function rounds(
  ctx: BenchContext,
  fn: (round: number) => Promise<[number, number]>,
): Promise<[number, number]> {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < (ctx.smoke ? 1 : 4); i++) {
    const [x, y] = await fn(i);
    a.push(x);
    b.push(y);
  }
  return [median(a), median(b)];
}

export const queueMetricsSection: BenchSection = {
  name: SECTION,
  description:
    'metrics() on a 1,000,000-message queue (exact scan vs fast counters, plan) and the hot-path cost of fast metrics',
  async run(ctx) {
    await migrate({ connectionString: ctx.url, components: ['queue'] });
    const admin = new pg.Pool({ connectionString: ctx.url, max: 2 });
    const client = new QueueClient({ connectionString: ctx.url, maxConnections: 4 });
    const s = client.schema;
    try {
      // --- a large queue, 50 messages in flight
      const size = ctx.size(1_000_000, 2_000);
      await client.createQueue('big');
      for (let done = 0; done < size; done += 100_000) {
        await admin.query(
          `INSERT INTO ${s}.q_big (vt, message) SELECT clock_timestamp(), $1::jsonb FROM generate_series(1, $2)`,
          [BODY, Math.min(100_000, size - done)],
        );
      }
      await client.read('big', { qty: 50, visibilityTimeoutMs: 3_600_000 });
      await admin.query(`VACUUM ANALYZE ${s}.q_big`);
      const metricsSql = `SELECT * FROM ${s}.metrics('big')`;

      const exact = await callsPerSecond(admin, metricsSql, ctx.smoke ? 1 : 5);

      // --- QueueClient.metrics() by default, no fast metrics: exact below
      // 10,000 rows, an estimate above (sql/queue/0008_metrics.sql)
      // (A smoke run's queue is below 10,000 rows: it lowers the bar so the
      // estimate path, not the exact one, is what runs and is checked.)
      const exactBelow = Math.min(10_000, Math.floor(size / 2));
      const dfltSql = `SELECT * FROM ${s}.metrics_fast('big', ${exactBelow})`;
      const dflt = await callsPerSecond(admin, dfltSql, ctx.smoke ? 1 : 200);
      const est = (await admin.query(dfltSql)).rows[0] as {
        exact: boolean;
        queue_length: string;
        queue_visible_length: string;
      };
      ctx.report({
        section: SECTION,
        operation: `metrics() default on ${size.toLocaleString('en-US')} messages, no fast metrics`,
        value: dflt,
        unit: 'calls/s',
        baseline: { name: 'exact scan (PGMQ)', value: exact },
        target: { ratio: 10 },
      });
      ctx.log(
        `default metrics(): exact=${est.exact}, queueLength ${est.queue_length} (true ${size}, ${((100 * (Number(est.queue_length) - size)) / size).toFixed(1)} %), visible ${est.queue_visible_length} (true ${size - 50})`,
      );
      const dfltPlans = (await nestedPlans(ctx.url, dfltSql)).filter((p) => p.includes('q_big'));
      if (dfltPlans.some((p) => /Seq Scan on q_big\b/.test(p)))
        throw new Error('default metrics() scanned the queue table');
      const t0 = Date.now();
      await client.enableFastMetrics('big');
      ctx.log(
        `enable_fast_metrics on ${size.toLocaleString('en-US')} messages: ${Date.now() - t0} ms (one count, one index build)`,
      );
      const fast = await callsPerSecond(admin, metricsSql, ctx.smoke ? 1 : 200);
      const m = (await admin.query(metricsSql)).rows[0] as {
        queue_length: string;
        queue_visible_length: string;
      };
      if (Number(m.queue_length) !== size || Number(m.queue_visible_length) !== size - 50) {
        throw new Error(`fast metrics not exact: ${JSON.stringify(m)}`);
      }
      ctx.report({
        section: SECTION,
        operation: `metrics() on ${size.toLocaleString('en-US')} messages, fast`,
        value: fast,
        unit: 'calls/s',
        baseline: { name: 'exact scan (PGMQ)', value: exact },
        target: { ratio: 10 },
      });

      // --- the plan: no sequential scan of the queue, index probes only
      const plans = await nestedPlans(ctx.url, metricsSql);
      const relevant = plans.filter((p) => p.includes('q_big'));
      for (const p of relevant) for (const line of p.split('\n')) ctx.log(`plan | ${line}`);
      if (relevant.some((p) => /Seq Scan on q_big\b/.test(p)))
        throw new Error('fast metrics scanned the queue table');

      // --- hot-path cost: the same client operations with and without fast metrics
      let n = 0;
      const drop = async (q: { plain: string; fast: string }): Promise<void> => {
        await client.dropQueue(q.plain);
        await client.dropQueue(q.fast);
      };
      // Runs both sides, in alternating order; returns [fast, plain].
      const both = async (
        round: number,
        side: (name: string) => Promise<number>,
        q: { plain: string; fast: string },
      ): Promise<[number, number]> => {
        if (round % 2 === 0) {
          const p = await side(q.plain);
          return [await side(q.fast), p];
        }
        const f = await side(q.fast);
        return [f, await side(q.plain)];
      };
      const pair = async (): Promise<{ plain: string; fast: string }> => {
        n++;
        const plain = `hp_plain_${n}`;
        const withFast = `hp_fast_${n}`;
        await client.createQueue(plain);
        await client.createQueue(withFast);
        await client.enableFastMetrics(withFast);
        return { plain, fast: withFast };
      };
      const body = JSON.parse(BODY) as unknown;
      const singles = ctx.size(4000, 40);
      const [sendFast, sendPlain] = await rounds(ctx, async (round) => {
        const q = await pair();
        const r = await both(
          round,
          (name) => throughput(singles, 4, 1, async () => void (await client.send(name, body))),
          q,
        );
        await drop(q);
        return r;
      });
      ctx.report({
        section: SECTION,
        operation: 'send, 1 per transaction, 4 clients, fast metrics on',
        value: sendFast,
        unit: 'msg/s',
        baseline: { name: 'same queue without', value: sendPlain },
        target: { ratio: 0.85 },
      });

      const bodies = Array.from({ length: 100 }, () => body);
      const batched = ctx.size(60_000, 400);
      const [batchFast, batchPlain] = await rounds(ctx, async (round) => {
        const q = await pair();
        const r = await both(
          round,
          (name) =>
            throughput(batched, 4, 100, async () => (await client.sendBatch(name, bodies)).length),
          q,
        );
        await drop(q);
        return r;
      });
      ctx.report({
        section: SECTION,
        operation: 'send_batch of 100, 4 clients, fast metrics on',
        value: batchFast,
        unit: 'msg/s',
        baseline: { name: 'same queue without', value: batchPlain },
        target: { ratio: 0.9 },
      });

      const prefill = ctx.size(40_000, 400);
      const [readFast, readPlain] = await rounds(ctx, async (round) => {
        const q = await pair();
        for (const name of [q.plain, q.fast]) {
          for (let i = 0; i < prefill; i += 1000)
            await client.sendBatch(
              name,
              Array.from({ length: Math.min(1000, prefill - i) }, () => body),
            );
          await admin.query(`VACUUM ANALYZE ${s}.q_${name}`);
        }
        const consume = (name: string) => async () => {
          const got = await client.read(name, { qty: 100 });
          if (got.length)
            await client.delete(
              name,
              got.map((x) => x.msgId),
            );
          return got.length || 100;
        };
        const r = await both(round, (name) => throughput(prefill, 4, 100, consume(name)), q);
        await drop(q);
        return r;
      });
      ctx.report({
        section: SECTION,
        operation: 'read 100 + delete, 4 consumers, fast metrics on',
        value: readFast,
        unit: 'msg/s',
        baseline: { name: 'same queue without', value: readPlain },
        target: { ratio: 0.85 },
      });
    } finally {
      await client.close();
      await admin.end();
    }
  },
};
