// Tracing through the isolated bus (sql/bus/0004_headers.sql): the publish
// span's W3C traceparent travels in the headers bus_publish stores, and
// bus_subscribe_with_headers hands it to the receiving member, so its
// delivery span is a child of the publish — across processes and login roles.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { makeLogin, type Login } from '../support/logins.js';
import { disableTracing, enableTracing } from '../../src/telemetry/index.js';
import { Bus, IsolatedBackend } from '../../src/bus/index.js';
import { inMemoryTracing, record } from './fixtures/otel.js';
import { HANDLE_HERE, expectRemotePublishParent } from './fixtures/remote-bus-publish.js';

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
  it('across processes: the delivery span is a child of a publish made in another process', async () => {
    const channel = 'traced.iso.x';
    const receiver = await member(receiverLogin.url, channel);
    const handled: string[] = [];
    receiver.subscribe((m) => {
      otel.provider.getTracer('app').startActiveSpan(HANDLE_HERE, (s) => s.end());
      handled.push(m.hello);
    });
    otel.exporter.reset();
    const { publish, deliver } = await expectRemotePublishParent(
      channel,
      { BUS_URL: publisherLogin.url },
      spans,
    );
    expect(handled).toEqual(['there']);
    expect(deliver.attributes['messaging.consumer.group.name']).toBe(receiver.queue);
    // What bus_publish stored: the trace context and nothing else. (The
    // handled message is archived with the member's next read: either table.)
    const [row] = await db.sql<{ headers: Record<string, string> }>(
      `SELECT headers FROM ${db.queueSchema}.a_${receiver.queue}
       UNION ALL SELECT headers FROM ${db.queueSchema}.q_${receiver.queue} LIMIT 1`,
    );
    expect(row!.headers).toEqual({ traceparent: `00-${publish.traceId}-${publish.spanId}-01` });
  }, 90_000);
});
