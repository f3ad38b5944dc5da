// Tracing through the isolated bus (sql/bus/0004_headers.sql): the publish
// span's W3C traceparent travels in the headers bus_publish stores, and
// bus_subscribe_with_headers hands it to the receiving member, so its
// delivery span is a child of the publish — across processes and login roles.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind } from '@opentelemetry/api';
import { eventually, useTestDatabase } from '../support/db.js';
import { makeLogin, type Login } from '../support/logins.js';
import { disableTracing, enableTracing } from '../../src/telemetry/index.js';
import { Bus, IsolatedBackend } from '../../src/bus/index.js';
import { inMemoryTracing, record, type SpanRecord } from './fixtures/otel.js';
import { runFixture } from './fixtures/run-fixture.js';

const db = useTestDatabase();
const otel = inMemoryTracing();
const spans = () => otel.exporter.getFinishedSpans().map(record);
let receiverLogin: Login;
let publisherLogin: Login;
/** Closed before the logins are dropped (which ends their sessions). */
const closers: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  expect(await enableTracing({ tracerProvider: otel.provider })).toBe(true);
  receiverLogin = await makeLogin(db.url, ['pgferry_bus'], 'traced_rx');
  publisherLogin = await makeLogin(db.url, ['pgferry_bus'], 'traced_tx');
});
afterAll(async () => {
  disableTracing();
  for (const c of closers.reverse()) await c.close();
  await receiverLogin?.drop();
  await publisherLogin?.drop();
});

async function member(url: string, channel: string): Promise<Bus<{ hello: string }>> {
  const backend = new IsolatedBackend({ connectionString: url });
  const bus = new Bus<{ hello: string }>({ backend, channel, maxPollMs: 1000 });
  closers.push(backend, { close: () => bus.stop() });
  await bus.start();
  return bus;
}

describe('isolated bus tracing', () => {
  it('the delivery span is a child of the publish span, in the same process', async () => {
    const channel = 'traced.iso';
    const sender = await member(publisherLogin.url, channel);
    const receiver = await member(receiverLogin.url, channel);
    const handled: string[] = [];
    receiver.subscribe((m) => void handled.push(m.hello));
    otel.exporter.reset();
    const request = await otel.provider
      .getTracer('app')
      .startActiveSpan('POST /iso', async (span) => {
        expect(await sender.publish({ hello: 'world' })).toBe(1);
        span.end();
        return span.spanContext();
      });
    await eventually(async () => spans().some((s) => s.name === `process ${channel}`), 30_000);
    const publish = spans().find((s) => s.name === `send ${channel}`)!;
    expect(publish).toMatchObject({
      kind: SpanKind.PRODUCER,
      traceId: request.traceId,
      parentSpanId: request.spanId,
    });
    const [row] = await db.sql<{ headers: Record<string, string> }>(
      `SELECT headers FROM ${db.queueSchema}.a_${receiver.queue} LIMIT 1`,
    );
    expect(row!.headers).toEqual({
      traceparent: `00-${publish.traceId}-${publish.spanId}-01`,
    });
    expect(spans().find((s) => s.name === `process ${channel}`)).toMatchObject({
      kind: SpanKind.CONSUMER,
      traceId: request.traceId,
      parentSpanId: publish.spanId,
      attributes: { 'messaging.consumer.group.name': receiver.queue },
    });
    expect(handled).toEqual(['world']);
  });

  it('across processes: the delivery span is a child of a publish made in another process', async () => {
    const channel = 'traced.iso.x';
    const receiver = await member(receiverLogin.url, channel);
    const handled: string[] = [];
    receiver.subscribe((m) => {
      otel.provider.getTracer('app').startActiveSpan('handle here', (s) => s.end());
      handled.push(m.hello);
    });
    otel.exporter.reset();
    const theirs = await runFixture<SpanRecord[]>(
      'test/telemetry/fixtures/traced-bus-publisher.ts',
      { BUS_URL: publisherLogin.url, CHANNEL: channel },
    );
    await eventually(async () => spans().some((s) => s.name === `process ${channel}`), 30_000);
    const request = theirs.find((s) => s.name === 'POST /x')!;
    const publish = theirs.find((s) => s.name === `send ${channel}`)!;
    expect(publish).toMatchObject({
      kind: SpanKind.PRODUCER,
      traceId: request.traceId,
      parentSpanId: request.spanId,
    });
    const deliver = spans().find((s) => s.name === `process ${channel}`)!;
    expect(deliver).toMatchObject({
      kind: SpanKind.CONSUMER,
      traceId: request.traceId,
      parentSpanId: publish.spanId,
    });
    expect(handled).toEqual(['there']);
    expect(spans().find((s) => s.name === 'handle here')?.parentSpanId).toBe(deliver.spanId);
  }, 90_000);
});
