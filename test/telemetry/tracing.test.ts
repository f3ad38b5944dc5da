import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind } from '@opentelemetry/api';
import { useTestDatabase } from '../support/db.js';
import { disableTracing, enableTracing, tracingEnabled } from '../../src/telemetry/index.js';
import { defineTask } from '../../src/tasks/define.js';
import { taskClient } from '../tasks/helpers.js';
import { inMemoryTracing, record, type SpanRecord } from './fixtures/otel.js';
import { runFixture } from './fixtures/run-fixture.js';

const db = useTestDatabase();
const otel = inMemoryTracing();

beforeAll(async () => {
  expect(await enableTracing({ tracerProvider: otel.provider })).toBe(true);
});
afterAll(() => disableTracing());

function runWorkerProcess(): Promise<SpanRecord[]> {
  return runFixture('test/telemetry/fixtures/traced-worker.ts', {
    DATABASE_URL: db.url,
    QUEUE_SCHEMA: db.queueSchema,
  });
}

const mail = defineTask({ name: 'traced_mail', handler: async () => undefined });

describe('OpenTelemetry tracing', () => {
  it("makes a job's process span a child of the enqueuing request's send span, across processes", async () => {
    const client = taskClient(db);
    const tracer = otel.provider.getTracer('app');
    const { id, requestSpan } = await tracer.startActiveSpan('POST /signup', async (span) => {
      const job = await client.enqueue(mail, { fail: true });
      span.end();
      return { id: job.id, requestSpan: span.spanContext() };
    });
    const mine = otel.exporter.getFinishedSpans().map(record);
    const send = mine.find((s) => s.name === 'send traced_mail')!;
    expect(send).toMatchObject({
      kind: SpanKind.PRODUCER,
      traceId: requestSpan.traceId,
      parentSpanId: requestSpan.spanId,
      attributes: {
        'messaging.system': 'pgferry',
        'messaging.operation.type': 'send',
        'messaging.destination.name': 'traced_mail',
        'messaging.message.id': String(id),
      },
    });
    const [row] = await db.sql<{ headers: Record<string, string> }>(
      `SELECT headers FROM ${db.queueSchema}.q_traced_mail WHERE msg_id = $1`,
      [id],
    );
    expect(row!.headers.traceparent).toBe(`00-${send.traceId}-${send.spanId}-01`);

    const theirs = await runWorkerProcess();
    const processSpans = theirs.filter((s) => s.name === 'process traced_mail');
    // Two attempts (the first fails), both children of the send span.
    expect(processSpans).toHaveLength(2);
    for (const p of processSpans) {
      expect(p).toMatchObject({
        kind: SpanKind.CONSUMER,
        traceId: requestSpan.traceId,
        parentSpanId: send.spanId,
      });
      expect(p.attributes['messaging.message.id']).toBe(String(id));
    }
    expect(
      processSpans.map((p) => p.attributes['messaging.message.delivery_count']).sort(),
    ).toEqual([1, 2]);
    expect(processSpans.map((p) => p.status).sort()).toEqual([0, 2]); // UNSET, ERROR
    // The handler's own span nests under the process span.
    const smtp = theirs.filter((s) => s.name === 'smtp');
    expect(smtp).toHaveLength(2);
    for (const s of smtp) expect(processSpans.map((p) => p.spanId)).toContain(s.parentSpanId);
    // Settle spans: retry after the first attempt, ack after the second.
    const settle = theirs.filter((s) => s.name === 'settle traced_mail');
    expect(settle.map((s) => s.attributes['pgferry.settle.outcome']).sort()).toEqual([
      'ack',
      'retry',
    ]);
    for (const s of settle) expect(processSpans.map((p) => p.spanId)).toContain(s.parentSpanId);
  });

  it('traces queue send and receive, and adds nothing when tracing is off', async () => {
    const q = db.queueClient();
    await q.createQueue('traced_q');
    otel.exporter.reset();
    const id = await q.send('traced_q', { a: 1 }, { headers: { tenant: 't1' } });
    const [m] = await q.read('traced_q', { qty: 5 });
    expect(m!.headers).toMatchObject({
      tenant: 't1',
      traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/),
    });
    const spans = otel.exporter.getFinishedSpans().map(record);
    expect(spans.find((s) => s.name === 'send traced_q')?.attributes['messaging.message.id']).toBe(
      String(id),
    );
    expect(spans.find((s) => s.name === 'receive traced_q')).toMatchObject({
      kind: SpanKind.CLIENT,
      attributes: { 'messaging.operation.type': 'receive', 'messaging.batch.message_count': 1 },
    });

    disableTracing();
    try {
      expect(tracingEnabled()).toBe(false);
      otel.exporter.reset();
      await q.send('traced_q', { b: 2 });
      const [plain] = await q.read('traced_q', { qty: 5 });
      expect(plain!.headers).toBeNull();
      expect(otel.exporter.getFinishedSpans()).toHaveLength(0);
    } finally {
      await enableTracing({ tracerProvider: otel.provider });
    }
  });
});
