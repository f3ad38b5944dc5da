// Tracing of batch sends (queue sendBatch, tasks enqueueBatch) and of the bus
// (publish -> delivery): one PRODUCER span per batch or publish, its W3C
// traceparent in every message's headers, so each consumer's span is its
// child (the context travels through the database, not the process).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind } from '@opentelemetry/api';
import { eventually, useTestDatabase } from '../support/db.js';
import { disableTracing, enableTracing } from '../../src/telemetry/index.js';
import { defineTask } from '../../src/tasks/define.js';
import { QueueClient } from '../../src/queue/client.js';
import { Bus, DirectBackend } from '../../src/bus/index.js';
import { taskClient, worker } from '../tasks/helpers.js';
import { inMemoryTracing, record } from './fixtures/otel.js';
import { HANDLE_HERE, expectRemotePublishParent } from './fixtures/remote-bus-publish.js';

const db = useTestDatabase();
const otel = inMemoryTracing();
const spans = () => otel.exporter.getFinishedSpans().map(record);
const TP = (traceId: string, spanId: string) => `00-${traceId}-${spanId}-01`;

beforeAll(async () => {
  expect(await enableTracing({ tracerProvider: otel.provider })).toBe(true);
});
afterAll(() => disableTracing());

describe('batch and bus tracing', () => {
  it('queue sendBatch: one send span; every message carries its traceparent, headers kept', async () => {
    const q = db.queueClient();
    await q.createQueue('traced_batch');
    otel.exporter.reset();
    const ids = await q.sendBatch('traced_batch', [{ a: 1 }, { a: 2 }, { a: 3 }], {
      headers: [{ tenant: 't1' }, null, { tenant: 't3' }],
    });
    const send = spans().find((s) => s.name === 'send traced_batch')!;
    expect(send).toMatchObject({
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.operation.type': 'send',
        'messaging.destination.name': 'traced_batch',
        'messaging.batch.message_count': 3,
      },
    });
    const rows = await db.sql<{ msg_id: string; headers: Record<string, string> }>(
      `SELECT msg_id, headers FROM ${db.queueSchema}.q_traced_batch ORDER BY msg_id`,
    );
    expect(rows.map((r) => Number(r.msg_id))).toEqual(ids);
    for (const r of rows) expect(r.headers.traceparent).toBe(TP(send.traceId, send.spanId));
    expect(rows.map((r) => r.headers.tenant)).toEqual(['t1', undefined, 't3']);
  });

  it("tasks enqueueBatch: each job's process span is a child of the batch's send span, under the request", async () => {
    const client = taskClient(db);
    const seen: number[] = [];
    const task = defineTask({
      name: 'traced_batch_job',
      handler: async (input: { n: number }) => void seen.push(input.n),
    });
    otel.exporter.reset();
    const tracer = otel.provider.getTracer('app');
    const request = await tracer.startActiveSpan('POST /import', async (span) => {
      await client.enqueueBatch(task, [{ input: { n: 1 } }, { input: { n: 2 } }]);
      span.end();
      return span.spanContext();
    });
    const send = spans().find((s) => s.name === 'send traced_batch_job')!;
    expect(send).toMatchObject({
      kind: SpanKind.PRODUCER,
      traceId: request.traceId,
      parentSpanId: request.spanId,
      attributes: { 'messaging.batch.message_count': 2 },
    });
    const w = worker(db, { tasks: [task] });
    await w.start();
    await eventually(async () => seen.length === 2, 30_000);
    await w.stop();
    const process = spans().filter((s) => s.name === 'process traced_batch_job');
    expect(process).toHaveLength(2);
    for (const p of process) {
      expect(p).toMatchObject({
        kind: SpanKind.CONSUMER,
        traceId: request.traceId,
        parentSpanId: send.spanId,
      });
    }
  });

  it('bus: the delivery span is a child of the publish span, through the message headers', async () => {
    const member = async () => {
      const client = db.track(
        new QueueClient({ connectionString: db.url, schema: db.queueSchema, maxConnections: 2 }),
      );
      const bus = new Bus<{ hello: string }>({
        backend: new DirectBackend({ client }),
        channel: 'traced.bus',
      });
      db.track({ close: () => bus.stop() });
      await bus.start();
      return bus;
    };
    const sender = await member();
    const receiver = await member();
    const handled: string[] = [];
    receiver.subscribe((m) => {
      otel.provider.getTracer('app').startActiveSpan('handle', (s) => s.end());
      handled.push(m.hello);
    });
    otel.exporter.reset();
    const tracer = otel.provider.getTracer('app');
    const request = await tracer.startActiveSpan('POST /chat', async (span) => {
      expect(await sender.publish({ hello: 'world' })).toBe(1);
      span.end();
      return span.spanContext();
    });
    await eventually(async () => handled.length === 1, 30_000);
    const publish = spans().find((s) => s.name === 'send traced.bus')!;
    expect(publish).toMatchObject({
      kind: SpanKind.PRODUCER,
      traceId: request.traceId,
      parentSpanId: request.spanId,
    });
    // The handled message is archived with the member's next read: either table.
    const [row] = await db.sql<{ headers: Record<string, string> }>(
      `SELECT headers FROM ${db.queueSchema}.a_${receiver.queue}
       UNION ALL SELECT headers FROM ${db.queueSchema}.q_${receiver.queue} LIMIT 1`,
    );
    expect(row!.headers.traceparent).toBe(TP(publish.traceId, publish.spanId));
    await eventually(async () => spans().some((s) => s.name === 'process traced.bus'), 10_000);
    const deliver = spans().find((s) => s.name === 'process traced.bus')!;
    expect(deliver).toMatchObject({
      kind: SpanKind.CONSUMER,
      traceId: request.traceId,
      parentSpanId: publish.spanId,
      attributes: {
        'messaging.destination.name': 'traced.bus',
        'messaging.consumer.group.name': receiver.queue,
      },
    });
    // The handler's own span nests under the delivery span.
    expect(spans().find((s) => s.name === 'handle')?.parentSpanId).toBe(deliver.spanId);
  });

  it('bus, across processes: the delivery span is a child of the publish made in another process', async () => {
    const channel = 'traced.bus.x';
    const client = db.track(
      new QueueClient({ connectionString: db.url, schema: db.queueSchema, maxConnections: 2 }),
    );
    const receiver = new Bus<{ hello: string }>({
      backend: new DirectBackend({ client }),
      channel,
    });
    db.track({ close: () => receiver.stop() });
    const handled: string[] = [];
    receiver.subscribe((m) => {
      otel.provider.getTracer('app').startActiveSpan(HANDLE_HERE, (s) => s.end());
      handled.push(m.hello);
    });
    await receiver.start();
    otel.exporter.reset();
    await expectRemotePublishParent(
      channel,
      { DATABASE_URL: db.url, QUEUE_SCHEMA: db.queueSchema },
      spans,
    );
    expect(handled).toEqual(['there']);
  }, 90_000);
});
