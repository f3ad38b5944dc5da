// Stream spans: send (PRODUCER), receive (CLIENT), process (CONSUMER) per event,
// and the trace context carried in ev_extra4 from the send to the process span.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind } from '@opentelemetry/api';
import { useTestDatabase } from '../support/db.js';
import { disableTracing, enableTracing } from '../../src/telemetry/index.js';
import { Consumer, StreamClient, StreamConsumer } from '../../src/stream/index.js';
import { inMemoryTracing, record, type SpanRecord } from './fixtures/otel.js';
import { runFixture } from './fixtures/run-fixture.js';

const db = useTestDatabase();
const otel = inMemoryTracing();

beforeAll(async () => {
  expect(await enableTracing({ tracerProvider: otel.provider })).toBe(true);
});
afterAll(() => disableTracing());

describe('stream tracing', () => {
  it('spans a send, a receive and the processing of each event; a failing handler marks its span', async () => {
    const sc = db.track(new StreamClient({ connectionString: db.url }));
    await sc.createStream('tr_events');
    const c = new Consumer<{ n: number }>({
      connectionString: db.url,
      stream: 'tr_events',
      name: 'tr_reader',
      ticker: false,
      handleSignals: false,
    });
    db.track({ close: () => c.stop() });
    c.on('*', async (m) => {
      if (m.payload.n === 2) throw new Error('bad event');
    });
    await sc.subscribe('tr_events', 'tr_reader');
    otel.exporter.reset();
    const id = await sc.send('tr_events', { n: 1 });
    const ids = await sc.sendBatch('tr_events', [{ n: 2 }]);
    await sc.forceNextTick('tr_events');
    await sc.tick('tr_events');
    const r = await c.processNext();
    expect(r).toMatchObject({ events: 2, nacked: 1 });
    const spans = otel.exporter.getFinishedSpans().map(record);
    const sends = spans.filter((s) => s.name === 'send tr_events');
    expect(sends.map((s) => [s.kind, s.attributes['messaging.message.id']])).toEqual([
      [SpanKind.PRODUCER, String(id)],
      [SpanKind.PRODUCER, String(ids[0])],
    ]);
    const receive = spans.find((s) => s.name === 'receive tr_events')!;
    expect(receive.kind).toBe(SpanKind.CLIENT);
    expect(receive.attributes['messaging.batch.message_count']).toBe(2);
    const processed = spans.filter((s) => s.name === 'process tr_events');
    expect(
      processed.map((s) => [
        s.kind,
        s.attributes['messaging.message.id'],
        s.attributes['messaging.consumer.group.name'],
        s.status,
      ]),
    ).toEqual([
      [SpanKind.CONSUMER, String(id), 'tr_reader', 0],
      [SpanKind.CONSUMER, String(ids[0]), 'tr_reader', 2],
    ]);
  });
});

/** Runs test/telemetry/fixtures/traced-stream-consumer.ts in its own process. */
function consumeInAnotherProcess(
  stream: string,
  consumer: string,
): Promise<{ result: { events: number; nacked: number }; spans: SpanRecord[] }> {
  return runFixture('test/telemetry/fixtures/traced-stream-consumer.ts', {
    DATABASE_URL: db.url,
    STREAM: stream,
    CONSUMER: consumer,
  });
}

/** ev_extra4 of every event of a stream, by event id. */
async function extra4(stream: string): Promise<Record<number, string | null>> {
  const [q] = await db.sql<{ id: number }>(
    `SELECT queue_id AS id FROM pgque.queue WHERE queue_name = $1`,
    [stream],
  );
  const rows = await db.sql<{ id: string; x: string | null }>(
    `SELECT ev_id AS id, ev_extra4 AS x FROM pgque.event_${q!.id} ORDER BY ev_id`,
  );
  return Object.fromEntries(rows.map((r) => [Number(r.id), r.x]));
}

const context = (s: SpanRecord): string =>
  JSON.stringify({ traceparent: `00-${s.traceId}-${s.spanId}-01` });

describe('stream trace context (ev_extra4)', () => {
  it("makes a consumer's process span, in another process, a child of the send span of the request", async () => {
    const sc = db.track(new StreamClient({ connectionString: db.url }));
    await sc.createStream('tr_cross');
    await sc.subscribe('tr_cross', 'far_reader');
    otel.exporter.reset();
    const tracer = otel.provider.getTracer('app');
    const { id, ids, request } = await tracer.startActiveSpan('POST /orders', async (span) => {
      const one = await sc.send('tr_cross', { n: 1 }, { type: 'order.created' });
      const many = await sc.sendBatch('tr_cross', [{ n: 2 }, { n: 3 }]);
      span.end();
      return { id: one, ids: many, request: span.spanContext() };
    });
    const sends = otel.exporter
      .getFinishedSpans()
      .map(record)
      .filter((s) => s.name === 'send tr_cross');
    expect(sends).toHaveLength(2);
    for (const s of sends) {
      expect(s).toMatchObject({ traceId: request.traceId, parentSpanId: request.spanId });
    }
    const [one, batch] = sends as [SpanRecord, SpanRecord];
    // The documented rule: ev_extra4 = {"traceparent": …} of the send span.
    expect(await extra4('tr_cross')).toEqual({
      [id]: context(one),
      [ids[0]!]: context(batch),
      [ids[1]!]: context(batch),
    });
    await sc.forceNextTick('tr_cross');
    await sc.tick('tr_cross');

    const theirs = await consumeInAnotherProcess('tr_cross', 'far_reader');
    expect(theirs.result).toMatchObject({ events: 3, nacked: 0 });
    const processed = theirs.spans.filter((s) => s.name === 'process tr_cross');
    expect(
      processed.map((s) => [
        s.kind,
        s.attributes['messaging.message.id'],
        s.traceId,
        s.parentSpanId,
      ]),
    ).toEqual([
      [SpanKind.CONSUMER, String(id), request.traceId, one.spanId],
      [SpanKind.CONSUMER, String(ids[0]), request.traceId, batch.spanId],
      [SpanKind.CONSUMER, String(ids[1]), request.traceId, batch.spanId],
    ]);
    // The handler's own spans nest under its process span.
    const handled = theirs.spans.filter((s) => s.name === 'handle');
    expect(handled.map((s) => s.parentSpanId)).toEqual(processed.map((s) => s.spanId));
    // The receive span of the consumer is its own (a batch spans several senders).
    const receive = theirs.spans.find((s) => s.name === 'receive tr_cross')!;
    expect(receive.parentSpanId).toBeUndefined();
  });

  it('another client in this process; no parent when tracing was off at send or ev_extra4 is not a trace context', async () => {
    const producer = db.track(new StreamClient({ connectionString: db.url }));
    await producer.createStream('tr_mixed');
    await producer.subscribe('tr_mixed', 'near_reader');
    disableTracing();
    const untraced = await producer.send('tr_mixed', { n: 'off' });
    expect(await enableTracing({ tracerProvider: otel.provider })).toBe(true);
    // Applications may use ev_extra4 themselves (PgQue's insert_event): not a context, ignored.
    const [own] = await db.sql<{ id: string }>(
      `SELECT pgque.insert_event('tr_mixed', 'own', '{}', NULL, NULL, NULL, 'app-value') AS id`,
    );
    const [bad] = await db.sql<{ id: string }>(
      `SELECT pgque.insert_event('tr_mixed', 'own', '{}', NULL, NULL, NULL, '{"traceparent":"00-zz"}') AS id`,
    );
    otel.exporter.reset();
    const traced = await producer.send('tr_mixed', { n: 'on' });
    const send = otel.exporter.getFinishedSpans().map(record)[0]!;
    const x = await extra4('tr_mixed');
    expect(x[untraced]).toBeNull(); // tracing off: the row is what it always was
    expect(x[traced]).toBe(context(send));
    await producer.forceNextTick('tr_mixed');
    await producer.tick('tr_mixed');

    const c = new StreamConsumer({
      connectionString: db.url,
      stream: 'tr_mixed',
      name: 'near_reader',
      ticker: false,
      listen: false,
      subscribe: false,
      handleSignals: false,
    });
    db.track({ close: () => c.client.close() });
    c.on('*', () => undefined);
    otel.exporter.reset();
    expect(await c.processNext()).toMatchObject({ events: 4, nacked: 0 });
    const processed = otel.exporter
      .getFinishedSpans()
      .map(record)
      .filter((s) => s.name === 'process tr_mixed');
    const byId = new Map(processed.map((s) => [Number(s.attributes['messaging.message.id']), s]));
    expect(byId.size).toBe(4);
    for (const plain of [untraced, Number(own!.id), Number(bad!.id)]) {
      expect(byId.get(plain)!.parentSpanId).toBeUndefined();
      expect(byId.get(plain)!.traceId).not.toBe(send.traceId);
    }
    expect(byId.get(traced)).toMatchObject({ traceId: send.traceId, parentSpanId: send.spanId });
  });

  it('a redelivery after a nack is still a child of the original send', async () => {
    const sc = db.track(new StreamClient({ connectionString: db.url }));
    await sc.createStream('tr_retry');
    await sc.subscribe('tr_retry', 'retry_reader');
    otel.exporter.reset();
    const id = await sc.send('tr_retry', { n: 1 });
    const send = otel.exporter.getFinishedSpans().map(record)[0]!;
    const c = new StreamConsumer({
      connectionString: db.url,
      stream: 'tr_retry',
      name: 'retry_reader',
      retryAfterMs: 0,
      ticker: false,
      listen: false,
      subscribe: false,
      handleSignals: false,
    });
    db.track({ close: () => c.client.close() });
    let calls = 0;
    c.on('*', () => {
      if (++calls === 1) throw new Error('first delivery fails');
    });
    await sc.forceNextTick('tr_retry');
    await sc.tick('tr_retry');
    expect(await c.processNext()).toMatchObject({ events: 1, nacked: 1 });
    expect(await sc.maintRetryEvents()).toBe(1);
    await sc.forceNextTick('tr_retry');
    await sc.tick('tr_retry');
    expect(await c.processNext()).toMatchObject({ events: 1, nacked: 0 });
    const processed = otel.exporter
      .getFinishedSpans()
      .map(record)
      .filter((s) => s.name === 'process tr_retry');
    expect(
      processed.map((s) => [
        s.attributes['messaging.message.id'],
        s.attributes['messaging.message.delivery_count'],
        s.parentSpanId,
        s.status,
      ]),
    ).toEqual([
      [String(id), 1, send.spanId, 2],
      [String(id), 2, send.spanId, 0],
    ]);
  });

  it('a role served by the SQL functions (writer grant only) carries the context too', async () => {
    const sc = db.track(new StreamClient({ connectionString: db.url }));
    await sc.createStream('tr_role');
    const role = `tr_writer_${process.pid}`;
    await db.sql(`CREATE ROLE ${role}; GRANT pgque_writer TO ${role}`);
    try {
      otel.exporter.reset();
      const out = await sc.transaction(async (tx) => {
        await tx.query(`SET LOCAL ROLE ${role}`);
        const id = await sc.send('tr_role', { w: 1 }, { tx });
        const ids = await sc.sendBatch('tr_role', [{ w: 2 }, null, { w: 4 }], { tx });
        const none = await sc.sendBatch('tr_role', [], { tx });
        return { id, ids, none };
      });
      expect(out).toEqual({ id: 1, ids: [2, 3, 4], none: [] });
      const sends = otel.exporter
        .getFinishedSpans()
        .map(record)
        .filter((s) => s.name === 'send tr_role');
      expect(sends).toHaveLength(3);
      expect(await extra4('tr_role')).toEqual({
        1: context(sends[0]!),
        2: context(sends[1]!),
        3: context(sends[1]!),
        4: context(sends[1]!),
      });
      const data = await db.sql<{ d: string | null }>(
        `SELECT ev_data AS d FROM pgque.event_${(await db.sql<{ id: number }>(`SELECT queue_id AS id FROM pgque.queue WHERE queue_name = 'tr_role'`))[0]!.id} ORDER BY ev_id`,
      );
      expect(data.map((r) => r.d)).toEqual(['{"w": 1}', '{"w": 2}', null, '{"w": 4}']);
    } finally {
      await db.sql(`DROP ROLE ${role}`);
    }
  });
});
