// Connection faults through the TCP proxy: every connection cut (as when
// every backend is terminated or a load balancer drops them), connections
// refused for a while (a failover), and a frozen network. Each component
// talks to the database through the proxy; producers go direct.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bus, DirectBackend } from '../../src/bus/index.js';
import { QueueClient } from '../../src/queue/client.js';
import { Consumer as StreamConsumer, StreamClient, Ticker } from '../../src/stream/index.js';
import { TaskClient } from '../../src/tasks/client.js';
import { defineTask } from '../../src/tasks/define.js';
import { Worker } from '../../src/tasks/worker.js';
import { recordingLogger } from '../bus/helpers.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';

const db = useTestDatabase();
let proxy: FaultProxy;
let via: string;

/** Longest back-off in these tests (ms). */
const CAP = 300;
/** Polls far longer than any wait below: a delivery inside BOUND came through a wake-up or a retry. */
const LONG_POLL = 60_000;
/** Generous for a loaded machine; the bench section prints the real recovery times. */
const BOUND = 15_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  const u = new URL(db.url);
  proxy = await startFaultProxy({ host: u.hostname, port: Number(u.port) });
  via = proxy.url(db.url);
});
afterAll(async () => {
  proxy.refuse(false);
  proxy.thaw();
  await proxy.close();
});

describe('task Worker', () => {
  it('after every connection is cut, re-LISTENs and re-checks at once: a job enqueued during the outage and one after run without a poll', async () => {
    const seen: number[] = [];
    const t = defineTask<{ i: number }>({ name: 'px_job', handler: ({ i }) => void seen.push(i) });
    const producer = db.track(
      new TaskClient({ connectionString: db.url, queueSchema: db.queueSchema }),
    );
    await producer.ensure(t);
    const client = db.track(new TaskClient({ connectionString: via, queueSchema: db.queueSchema }));
    const w = new Worker({
      client,
      tasks: [t],
      handleSignals: false,
      prune: null,
      pollIntervalMs: LONG_POLL,
      errorRetryIntervalMs: CAP,
    });
    db.track({ close: () => w.stop(0) });
    await w.start();
    await producer.enqueue(t, { i: 1 });
    await eventually(() => seen.includes(1), BOUND);
    // The lane sleeps now (up to a minute). The outage: an insert commits while it is away.
    proxy.refuse(true);
    proxy.cut();
    await producer.enqueue(t, { i: 2 });
    await sleep(500);
    proxy.refuse(false);
    await eventually(() => seen.includes(2), BOUND);
    await producer.enqueue(t, { i: 3 });
    await eventually(() => seen.includes(3), BOUND);
    expect(seen.filter((i) => i === 2)).toHaveLength(1);
    expect(w.health().state).toBe('running');
  });

  it('a frozen network holds everything; after the thaw the worker carries on', async () => {
    const seen: number[] = [];
    const t = defineTask<{ i: number }>({
      name: 'px_freeze',
      handler: ({ i }) => void seen.push(i),
    });
    const producer = db.track(
      new TaskClient({ connectionString: db.url, queueSchema: db.queueSchema }),
    );
    await producer.ensure(t);
    const client = db.track(new TaskClient({ connectionString: via, queueSchema: db.queueSchema }));
    const w = new Worker({
      client,
      tasks: [t],
      handleSignals: false,
      prune: null,
      pollIntervalMs: 200,
    });
    db.track({ close: () => w.stop(0) });
    await w.start();
    proxy.freeze();
    try {
      await producer.enqueue(t, { i: 1 });
      await sleep(700);
      expect(seen).toEqual([]);
    } finally {
      proxy.thaw();
    }
    await eventually(() => seen.includes(1), BOUND);
  });
});

describe('queue Consumer', () => {
  it('after connections are refused and cut, it re-LISTENs and re-checks at once; logs the outage once', async () => {
    const producer = db.queueClient();
    await producer.createQueue('px_q');
    await producer.enableNotifyInsert('px_q', { throttleIntervalMs: 0 });
    const logger = recordingLogger();
    const client = db.track(
      new QueueClient({ connectionString: via, schema: db.queueSchema, logger }),
    );
    const c = client.consume<number>('px_q', {
      pollIntervalMs: LONG_POLL,
      wakeOnVisible: false,
      retryDelayMs: CAP,
    });
    const got: number[] = [];
    const loop = (async () => {
      for await (const d of c) {
        got.push(d.message);
        await d.delete().catch(() => undefined);
      }
    })();
    db.track({ close: async () => (c.stop(), await loop) });
    await eventually(() => c.isListening, BOUND);
    await producer.send('px_q', 1);
    await eventually(() => got.includes(1), BOUND);
    proxy.refuse(true);
    proxy.cut();
    await producer.send('px_q', 2); // committed while the consumer is away
    // Wake it so it tries (and fails) a few reads during the outage.
    c.wake();
    await eventually(() => c.health().state === 'reconnecting', BOUND);
    await sleep(5 * CAP);
    expect(c.health().failedAttempts).toBeGreaterThanOrEqual(2);
    proxy.refuse(false);
    await eventually(() => got.includes(2), BOUND);
    await producer.send('px_q', 3); // through the re-established LISTEN
    await eventually(() => got.includes(3), BOUND);
    expect(new Set(got)).toEqual(new Set([1, 2, 3]));
    expect(c.health().state).toBe('running');
    const lost = logger.entries.filter((e) =>
      e.msg?.includes('pgferry consumer: database call failed'),
    );
    const back = logger.entries.filter((e) =>
      e.msg?.includes('pgferry consumer: database reachable'),
    );
    expect(lost).toHaveLength(1);
    expect(back).toHaveLength(1);
  });
});

describe('stream Consumer and Ticker', () => {
  it('both resume after every connection is dropped for a while; events sent before and after are delivered', async () => {
    const producer = db.track(new StreamClient({ connectionString: db.url }));
    await producer.createStream('px_stream');
    await producer.subscribe('px_stream', 'px');
    const ticker = new Ticker({
      connectionString: via,
      electionIntervalMs: CAP,
      maxIntervalMs: 50,
    });
    db.track({ close: () => ticker.stop() });
    ticker.start();
    await eventually(() => ticker.isLeader, BOUND);
    const got: number[] = [];
    const errors: unknown[] = [];
    const c = new StreamConsumer<number>({
      connectionString: via,
      stream: 'px_stream',
      name: 'px',
      ticker: false,
      pollIntervalMs: CAP,
      handleSignals: false,
      onError: (e) => void errors.push(e),
    });
    c.on('*', (m) => void got.push(m.payload));
    db.track({ close: () => c.stop() });
    void c.start();
    await eventually(() => c.health().state === 'running', BOUND);
    await producer.send('px_stream', 1);
    await eventually(() => got.includes(1), BOUND);
    await producer.send('px_stream', 2); // acknowledged; may be in flight when the connections go
    proxy.refuse(true);
    proxy.cut();
    await eventually(
      () => ticker.health().state === 'reconnecting' && c.health().state === 'reconnecting',
      BOUND,
    );
    expect(ticker.isLeader).toBe(false);
    await sleep(3 * CAP);
    proxy.refuse(false);
    await eventually(() => ticker.isLeader, BOUND);
    await producer.send('px_stream', 3);
    await eventually(() => got.includes(2) && got.includes(3), BOUND);
    expect(new Set(got)).toEqual(new Set([1, 2, 3]));
    expect(ticker.health().state).toBe('running');
    expect(c.health().state).toBe('running');
    expect(errors.length).toBeGreaterThan(0);
  });
});

describe('bus', () => {
  it('a member whose connections are dropped backs off (no retry storm, one log line), then receives again', async () => {
    const logger = recordingLogger();
    const mine = db.track(new QueueClient({ connectionString: via, schema: db.queueSchema }));
    const theirs = db.track(new QueueClient({ connectionString: db.url, schema: db.queueSchema }));
    const a = new Bus<number>({
      backend: new DirectBackend({ client: mine }),
      channel: 'px_bus',
      logger,
      pollIntervalMs: 20,
      maxRetryDelayMs: CAP,
      maxPollSeconds: 1,
    });
    const b = new Bus<number>({
      backend: new DirectBackend({ client: theirs }),
      channel: 'px_bus',
    });
    db.track({ close: () => b.stop() });
    db.track({ close: () => a.stop() });
    const got: number[] = [];
    a.subscribe((m) => void got.push(m));
    await a.start();
    await b.start();
    await b.publish(1);
    await eventually(() => got.includes(1), BOUND);
    proxy.refuse(true);
    proxy.cut();
    await eventually(() => a.health().state === 'reconnecting', BOUND);
    const before = a.stats.readErrors;
    await sleep(2000);
    const during = a.stats.readErrors - before;
    // 100 retries at the old fixed 20 ms; with back-off capped at 300 ms, about 8.
    expect(during).toBeLessThan(30);
    await b.publish(2); // sent while a is away
    proxy.refuse(false);
    await eventually(() => got.includes(2), BOUND);
    await b.publish(3);
    await eventually(() => got.includes(3), BOUND);
    expect(a.health().state).toBe('running');
    const warned = logger.entries.filter((e) => e.level === 'warn' || e.level === 'error');
    expect(warned.map((e) => e.msg)).toEqual([
      'pgferry bus: database call failed; retrying with back-off',
    ]);
  });
});
