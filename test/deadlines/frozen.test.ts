import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { ConnectionError, QueueClient, TimeoutError } from '../../src/index.js';
import { PgDriver } from '../../src/driver/pg.js';
import { PostgresJsDriver } from '../../src/driver/postgres.js';
import type { DeadlineOptions } from '../../src/driver/deadlines.js';
import type { Driver } from '../../src/driver/types.js';

const db = useTestDatabase();
const S = db.queueSchema;
let proxy: FaultProxy;

beforeAll(async () => {
  const u = new URL(db.url);
  proxy = await startFaultProxy({ host: u.hostname, port: Number(u.port) });
  await db.sql(`SELECT ${S}.create('frozen')`);
});
afterAll(async () => {
  proxy.thaw();
  await proxy.close();
});

const deadlines: DeadlineOptions = { connectTimeoutMs: 1000, queryTimeoutMs: 1000 };
const drivers: [string, () => Driver][] = [
  ['pg', () => new PgDriver({ connectionString: proxy.url(db.url), ...deadlines })],
  [
    'postgres.js',
    () => new PostgresJsDriver({ connectionString: proxy.url(db.url), ...deadlines }),
  ],
];

/** What `p` settled with, and after how long. */
async function outcome(p: Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const started = Date.now();
  try {
    await p;
    return { err: undefined, ms: Date.now() - started };
  } catch (err) {
    return { err, ms: Date.now() - started };
  }
}

// Generous bound for a loaded machine: the point is "not forever".
const BOUND_MS = 15_000;

describe.each(drivers)('a frozen server through the %s driver', (_name, makeDriver) => {
  it('send, read and a transaction fail with TimeoutError, then work again after the thaw', async () => {
    const q = db.track(new QueueClient({ driver: db.track(makeDriver()), schema: S }));
    await q.send('frozen', { before: true }); // a live connection exists
    proxy.freeze();
    try {
      // The pooled connection is stuck: the statement's own deadline ends it.
      const first = await outcome(q.send('frozen', { during: true }));
      expect(first.err).toBeInstanceOf(TimeoutError);
      expect((first.err as TimeoutError).code).toBe('PGFERRY_TIMEOUT');
      expect(first.ms).toBeLessThan(BOUND_MS);
      // That connection was discarded; the next ones cannot even connect.
      for (const attempt of [
        () => q.read('frozen'),
        () => q.transaction((tx) => q.send('frozen', { tx: true }, { tx })),
      ]) {
        const { err, ms } = await outcome(attempt());
        expect(err instanceof TimeoutError || err instanceof ConnectionError, String(err)).toBe(
          true,
        );
        expect(ms).toBeLessThan(BOUND_MS);
      }
    } finally {
      proxy.thaw();
    }
    // Recovers by itself: the timed-out connections were discarded.
    const id = await q.send('frozen', { after: true });
    expect(id).toBeGreaterThan(0);
  });

  it('a new connection to a frozen server fails with ConnectionError or TimeoutError within connectTimeoutMs', async () => {
    proxy.freeze();
    try {
      const q = db.track(new QueueClient({ driver: db.track(makeDriver()), schema: S }));
      const { err, ms } = await outcome(q.send('frozen', 1));
      expect(err instanceof ConnectionError || err instanceof TimeoutError, String(err)).toBe(true);
      expect(ms).toBeLessThan(BOUND_MS);
    } finally {
      proxy.thaw();
    }
  });

  it('a long-poll longer than queryTimeoutMs is not cut: it extends its own deadline', async () => {
    const q = db.track(new QueueClient({ driver: db.track(makeDriver()), schema: S }));
    await q.createQueue('empty_poll');
    const got = await q.readWithPoll('empty_poll', { maxPollSeconds: 2, pollIntervalMs: 200 });
    expect(got).toEqual([]);
  });
});

describe('defaults and 0', () => {
  it('deadlines are on by default and 0 disables one; bad values are refused', async () => {
    const { resolveDeadlines } = await import('../../src/driver/deadlines.js');
    expect(resolveDeadlines({})).toEqual({
      connectTimeoutMs: 10_000,
      queryTimeoutMs: 30_000,
      keepAliveMs: 10_000,
    });
    expect(resolveDeadlines({ queryTimeoutMs: 0 }).queryTimeoutMs).toBe(0);
    expect(() => resolveDeadlines({ queryTimeoutMs: -1 })).toThrow(/queryTimeoutMs/);
    const d = db.track(new PgDriver({ connectionString: db.url }));
    const opts = d.pool.options as { keepAlive?: boolean; keepAliveInitialDelayMillis?: number };
    expect(opts.keepAlive).toBe(true);
    expect(opts.keepAliveInitialDelayMillis).toBe(10_000);
  });

  it('queryTimeoutMs: 0 waits for a frozen server until it thaws', async () => {
    const q = db.track(
      new QueueClient({
        driver: db.track(new PgDriver({ connectionString: proxy.url(db.url), queryTimeoutMs: 0 })),
        schema: S,
      }),
    );
    await q.send('frozen', 0);
    proxy.freeze();
    let settled = false;
    const p = q.send('frozen', 1).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 1500));
    expect(settled).toBe(false);
    proxy.thaw();
    expect(await p).toBeGreaterThan(0);
  });
});

describe('the deadline options flow through every client that makes its own pool', () => {
  it('TaskClient and StreamClient fail typed on a frozen server, and work after the thaw', async () => {
    const { TaskClient } = await import('../../src/tasks/client.js');
    const { StreamClient } = await import('../../src/stream/client.js');
    const { defineTask } = await import('../../src/tasks/define.js');
    const url = proxy.url(db.url);
    const tasks = db.track(new TaskClient({ connectionString: url, queueSchema: S, ...deadlines }));
    const streams = db.track(new StreamClient({ connectionString: url, ...deadlines }));
    const task = defineTask<number>({ name: 'frozen_task', handler: async () => undefined });
    await tasks.enqueue(task, 1);
    await streams.createStream('frozen_stream');
    proxy.freeze();
    try {
      for (const attempt of [
        () => tasks.enqueue(task, 2),
        () => streams.send('frozen_stream', 2),
      ]) {
        const { err, ms } = await outcome(attempt());
        expect(err instanceof TimeoutError || err instanceof ConnectionError, String(err)).toBe(
          true,
        );
        expect(ms).toBeLessThan(BOUND_MS);
      }
    } finally {
      proxy.thaw();
    }
    expect((await tasks.enqueue(task, 3)).id).toBeGreaterThan(0);
    expect(await streams.send('frozen_stream', 3)).toBeGreaterThan(0);
  });
});
