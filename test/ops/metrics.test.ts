import { afterAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { useTestDatabase, eventually } from '../support/db.js';
import { Ops } from '../../src/ops/ops.js';
import { metricsHandler, renderMetrics } from '../../src/ops/prometheus.js';
import { TaskMetrics } from '../../src/ops/task-metrics.js';
import { queueStats } from '../../src/ops/queue-stats.js';
import { defineTask } from '../../src/tasks/define.js';
import { taskClient, worker } from '../tasks/helpers.js';

const db = useTestDatabase();

/** Parses Prometheus text into "name{labels}" → value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function ops(): Ops {
  return db.track(new Ops({ connectionString: db.url, schemas: { queue: db.queueSchema } }));
}

describe('Prometheus metrics', () => {
  it('reports queue depth, in-flight, delayed, oldest age and dead letters', async () => {
    const q = db.queueClient();
    await q.createQueue('m_orders');
    await q.createQueue('m_orders_dead');
    await q.setDeadLetterPolicy('m_orders', { deadLetterQueue: 'm_orders_dead', maxReadCount: 5 });
    await q.sendBatch('m_orders', [1, 2, 3, 4, 5]);
    await q.send('m_orders', 6, { delaySeconds: 3600 });
    await q.read('m_orders', { qty: 2, visibilityTimeoutSeconds: 600 });
    await q.sendBatch('m_orders_dead', ['x', 'y']);
    // Make the oldest message look 100 s old.
    await db.sql(
      `UPDATE ${db.queueSchema}.q_m_orders SET enqueued_at = now() - interval '100 seconds' WHERE msg_id = 1`,
    );
    const m = parse(await renderMetrics(ops()));
    expect(m.get('pgferry_queue_depth{queue="m_orders"}')).toBe(6);
    expect(m.get('pgferry_queue_depth_exact{queue="m_orders"}')).toBe(1);
    expect(m.get('pgferry_queue_in_flight{queue="m_orders"}')).toBe(2);
    expect(m.get('pgferry_queue_delayed{queue="m_orders"}')).toBe(1);
    expect(m.get('pgferry_queue_dead_letters{queue="m_orders"}')).toBe(2);
    expect(m.get('pgferry_queue_depth{queue="m_orders_dead"}')).toBe(2);
    // A counter from the msg_id sequence: 6 sent, whatever was read since.
    expect(m.get('pgferry_queue_messages_sent_total{queue="m_orders"}')).toBe(6);
    const age = m.get('pgferry_queue_oldest_message_age_seconds{queue="m_orders"}')!;
    expect(age).toBeGreaterThanOrEqual(99);
    expect(age).toBeLessThan(1000);
  });

  it('uses the fast-metrics counter when enabled and the planner estimate beyond the exact cap', async () => {
    const q = db.queueClient();
    await q.createQueue('m_fast');
    await q.enableFastMetrics('m_fast');
    await q.sendBatch('m_fast', [1, 2, 3]);
    const [fast] = await queueStats(db.pool, db.queueSchema, ['m_fast']);
    expect(fast).toMatchObject({ depth: 3, depthExact: true, fastMetrics: true });

    await q.createQueue('m_big');
    await db.sql(
      `INSERT INTO ${db.queueSchema}.q_m_big (vt, message) SELECT now(), to_jsonb(g) FROM generate_series(1, 12000) g`,
    );
    await db.sql(`ANALYZE ${db.queueSchema}.q_m_big`);
    const [big] = await queueStats(db.pool, db.queueSchema, ['m_big']);
    expect(big!.depthExact).toBe(false);
    // reltuples after ANALYZE of a 12,000-row table is exact or very near it.
    expect(big!.depth).toBeGreaterThan(10_000);
    expect(big!.depth).toBeLessThan(14_000);
  });

  it('counts task outcomes and durations from worker events, and task jobs by state', async () => {
    const m = new TaskMetrics();
    const ok = defineTask({ name: 'm_ok', handler: async () => undefined });
    const bad = defineTask({
      name: 'm_bad',
      maxRetries: 1,
      backoff: { kind: 'fixed', delayMs: 0 },
      handler: async () => {
        throw new Error('boom');
      },
    });
    const client = taskClient(db);
    for (let i = 0; i < 3; i++) await client.enqueue(ok, {});
    await client.enqueue(bad, {});
    const w = worker(db, { tasks: [ok, bad] });
    const detach = m.attach(w);
    await w.start();
    await eventually(async () => {
      const s = m.snapshot();
      return s.get('m_ok')?.succeeded === 3 && s.get('m_bad')?.dead === 1;
    }, 20_000);
    await w.stop();
    detach();
    const o = ops();
    const text = await renderMetrics(o, { taskMetrics: m });
    const p = parse(text);
    expect(p.get('pgferry_task_succeeded_total{task="m_ok"}')).toBe(3);
    expect(p.get('pgferry_task_processed_total{task="m_ok"}')).toBe(3);
    expect(p.get('pgferry_task_failed_total{task="m_bad"}')).toBe(2);
    expect(p.get('pgferry_task_retried_total{task="m_bad"}')).toBe(1);
    expect(p.get('pgferry_task_dead_total{task="m_bad"}')).toBe(1);
    expect(p.get('pgferry_task_duration_seconds_count{task="m_ok"}')).toBe(3);
    expect(p.get('pgferry_task_duration_seconds_bucket{task="m_ok",le="+Inf"}')).toBe(3);
    expect(p.get('pgferry_task_jobs{task="m_bad",state="dead"}')).toBe(1);
    expect(p.get('pgferry_task_jobs{task="m_ok",state="queued"}')).toBe(0);
    expect(text).toContain('# TYPE pgferry_task_duration_seconds histogram');
  });

  it('reports stream consumer lag and bus members, served over HTTP', async () => {
    await db.sql(`SELECT pgque.create_queue('m_events')`);
    await db.sql(`SELECT pgque.subscribe('m_events', 'm_reader')`);
    await db.sql(`SELECT pgque.send('m_events', '{"a":1}'::jsonb)`);
    await db.sql(`SELECT pgque.force_next_tick('m_events'), pgque.ticker('m_events')`);
    await db.sql(`SELECT bus_join('ops-channel')`);
    await db.sql(`SELECT bus_join('ops-channel')`);
    const server = createServer((req, res) => void metricsHandler(ops())(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    afterAll(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as AddressInfo).port;
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const p = parse(await res.text());
    const pending = 'pgferry_stream_consumer_pending_events{stream="m_events",consumer="m_reader"}';
    // pending_events is PgQue's approximate event-sequence distance: above 0 before…
    expect(p.get(pending)).toBeGreaterThan(0);
    expect(
      p.has('pgferry_stream_consumer_lag_seconds{stream="m_events",consumer="m_reader"}'),
    ).toBe(true);
    const [h] = await db.sql<{ h: string }>(
      `SELECT encode(sha256('ops-channel'::bytea), 'hex') AS h`,
    );
    expect(p.get(`pgferry_bus_members{channel_hash="${h!.h}",liveness="live"}`)).toBe(2);
    // …and 0 once the consumer has received and acked the window.
    const [b] = await db.sql<{ batch_id: string }>(
      `SELECT batch_id FROM pgque.receive('m_events', 'm_reader', 100)`,
    );
    await db.sql(`SELECT pgque.ack($1)`, [b!.batch_id]);
    const after = parse(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    expect(after.get(pending)).toBe(0);
  });
});
