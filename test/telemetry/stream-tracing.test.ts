// Stream spans: send (PRODUCER), receive (CLIENT), process (CONSUMER) per event.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind } from '@opentelemetry/api';
import { useTestDatabase } from '../support/db.js';
import { disableTracing, enableTracing } from '../../src/telemetry/index.js';
import { Consumer, StreamClient } from '../../src/stream/index.js';
import { inMemoryTracing, record } from './fixtures/otel.js';

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
