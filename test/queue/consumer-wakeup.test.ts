import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { ConnectionError, InvalidArgumentError } from '../../src/errors.js';
import type { Driver } from '../../src/driver/types.js';
import type { Logger } from '../../src/logger.js';
import { QueueClient } from '../../src/queue/client.js';
import type { Consumer } from '../../src/queue/consumer.js';

const db = useTestDatabase();

interface Got {
  msgId: number;
  at: number;
  message: unknown;
}

/** Iterates a consumer in the background, deleting each delivery; `stop()` ends it and waits. */
function run<T>(
  consumer: Consumer<T>,
  { finish = true } = {},
): { got: Got[]; stop(): Promise<void> } {
  const got: Got[] = [];
  const done = (async () => {
    for await (const d of consumer) {
      got.push({ msgId: d.msgId, at: performance.now(), message: d.message });
      if (finish) await d.delete();
    }
  })();
  return {
    got,
    stop: async () => {
      consumer.stop();
      await done;
    },
  };
}

describe('consumer wake-ups', () => {
  it('LISTEN: an inserted message arrives in milliseconds although the poll interval is a minute', async () => {
    const client = db.queueClient();
    await client.createQueue('wk_listen');
    await client.enableNotifyInsert('wk_listen', { throttleIntervalMs: 0 });
    const consumer = client.consume('wk_listen', { pollIntervalMs: 60_000 });
    const r = run(consumer);
    await eventually(() => consumer.isListening);
    // After each delivery the consumer reads again, finds nothing and waits a minute:
    // only the notification can bring the next message in time.
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await client.send('wk_listen', { i });
      await eventually(() => r.got.length === i + 1, 5000, 2);
      expect(r.got[i]!.at - t0).toBeLessThan(1000);
    }
    await r.stop();
    expect(consumer.isListening).toBe(false);
  });

  it('falls back to polling when LISTEN fails (e.g. behind a transaction pooler), and says so', async () => {
    const real = db.driver();
    // The real driver for every query; only LISTEN is refused, as a pooler would.
    const noListen: Driver = Object.create(real, {
      listen: {
        value: () =>
          Promise.reject(new ConnectionError('LISTEN is not supported through this pooler')),
      },
      close: { value: () => Promise.resolve() },
    }) as Driver;
    const warnings: string[] = [];
    const logger: Logger = {
      debug: () => undefined,
      info: () => undefined,
      error: () => undefined,
      warn: (_o, msg) => void warnings.push(msg ?? ''),
    };
    const client = db.track(new QueueClient({ driver: noListen, schema: db.queueSchema, logger }));
    await client.createQueue('wk_poll');
    await client.enableNotifyInsert('wk_poll', { throttleIntervalMs: 0 });
    const consumer = client.consume('wk_poll', { pollIntervalMs: 30 });
    const r = run(consumer);
    await eventually(() => warnings.some((w) => /falling back to polling/.test(w)));
    expect(consumer.isListening).toBe(false);
    await client.send('wk_poll', { a: 1 });
    await client.send('wk_poll', { a: 2 });
    await eventually(() => r.got.length === 2);
    await r.stop();
  });

  it('a message delayed 1 s arrives ~1 s later, not after the one-minute poll interval (LISTEN + next vt)', async () => {
    const client = db.queueClient();
    await client.createQueue('wk_delay');
    await client.enableNotifyInsert('wk_delay', { throttleIntervalMs: 0 });
    const consumer = client.consume('wk_delay', { pollIntervalMs: 60_000 });
    const r = run(consumer);
    await eventually(() => consumer.isListening);
    const t0 = performance.now();
    await client.send('wk_delay', { late: true }, { delaySeconds: 1 });
    await eventually(() => r.got.length === 1, 5000, 5);
    const elapsed = r.got[0]!.at - t0;
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(1500);
    await r.stop();
  });

  it('without notifications: a delayed message already queued, and an expired visibility timeout, arrive on time', async () => {
    const client = db.queueClient();
    await client.createQueue('wk_vt');
    const t0 = performance.now();
    await client.send('wk_vt', 'delayed', { delaySeconds: 1 });
    await client.send('wk_vt', 'in flight');
    // Another reader holds "in flight" for 2 s and never finishes it.
    const [held] = await client.read('wk_vt', { visibilityTimeoutSeconds: 2 });
    expect(held!.message).toBe('in flight');
    const consumer = client.consume('wk_vt', { pollIntervalMs: 60_000, listen: false });
    const r = run(consumer);
    await eventually(() => r.got.length === 2, 6000, 5);
    const [a, b] = r.got;
    expect(a!.message).toBe('delayed');
    expect(a!.at - t0).toBeGreaterThanOrEqual(950);
    expect(a!.at - t0).toBeLessThan(1500);
    expect(b!.message).toBe('in flight');
    expect(b!.at - t0).toBeGreaterThanOrEqual(1950);
    expect(b!.at - t0).toBeLessThan(2500);
    await r.stop();
  });
});

describe('FIFO consumer modes', () => {
  it('mode "grouped" hands out a group in order; a blocked group wakes on the delete notification of its head', async () => {
    const client = db.queueClient();
    await client.createQueue('wk_fifo');
    await client.enableNotifyInsert('wk_fifo', { throttleIntervalMs: 0 });
    await client.enableNotifyDelete('wk_fifo', { throttleIntervalMs: 0 });
    const group = (g: string) => ({ headers: { 'x-pgmq-group': g } });
    await client.send('wk_fifo', 'A1', group('A'));
    await client.send('wk_fifo', 'A2', group('A'));
    // Another worker holds A1 for a minute.
    const [a1] = await client.readGrouped('wk_fifo', { visibilityTimeoutSeconds: 60 });
    expect(a1!.message).toBe('A1');
    const consumer = client.consume('wk_fifo', {
      mode: 'grouped',
      pollIntervalMs: 60_000,
      batchSize: 5,
    });
    const r = run(consumer);
    await eventually(() => consumer.isListening);
    await client.send('wk_fifo', 'B1', group('B'));
    await eventually(() => r.got.length === 1, 5000, 2);
    expect(r.got[0]!.message).toBe('B1'); // A is blocked by its in-flight head
    const t0 = performance.now();
    await client.deleteIfHeld('wk_fifo', a1!.msgId, a1!.readCount);
    await eventually(() => r.got.length === 2, 5000, 2);
    expect(r.got[1]!.message).toBe('A2');
    expect(r.got[1]!.at - t0).toBeLessThan(1000);
    await r.stop();
  });

  it('modes roundRobin and head', async () => {
    const client = db.queueClient();
    await client.createQueue('wk_rr');
    for (const [g, n] of [
      ['A', 1],
      ['A', 2],
      ['B', 1],
      ['B', 2],
    ] as const) {
      await client.send('wk_rr', `${g}${n}`, { headers: { 'x-pgmq-group': g } });
    }
    const rr = run(
      client.consume('wk_rr', {
        mode: 'roundRobin',
        batchSize: 4,
        listen: false,
        pollIntervalMs: 20,
      }),
    );
    await eventually(() => rr.got.length === 4);
    await rr.stop();
    expect(rr.got.map((g) => g.message)).toEqual(['A1', 'B1', 'A2', 'B2']);

    for (const [g, n] of [
      ['A', 1],
      ['A', 2],
      ['B', 1],
    ] as const) {
      await client.send('wk_rr', `${g}${n}`, { headers: { 'x-pgmq-group': g } });
    }
    // head, without finishing: one message per group, the rest stay blocked behind the heads.
    const head = run(
      client.consume('wk_rr', { mode: 'head', batchSize: 10, listen: false, pollIntervalMs: 20 }),
      {
        finish: false,
      },
    );
    await eventually(() => head.got.length === 2);
    await head.stop();
    expect(head.got.map((g) => g.message).sort()).toEqual(['A1', 'B1']);
  });

  it('refuses bad options', () => {
    const client = db.queueClient();
    // @ts-expect-error: not a mode
    expect(() => client.consume('x', { mode: 'lifo' })).toThrow(InvalidArgumentError);
    expect(() => client.consume('x', { mode: 'grouped', conditional: { a: 1 } })).toThrow(
      InvalidArgumentError,
    );
  });
});
