import { QueueClient } from '../../src/queue/client.js';
import { migrate } from '../../src/migrate/migrator.js';
import { percentile, type BenchSection } from '../harness.js';

// Wake-up latency: from the moment send() is called to the moment a waiting
// consumer holds the message, p50 and p99. LISTEN (insert notifications,
// throttle 0) against polling every 100 ms, same run. Sends are spaced with
// jitter so polling is not phase-locked with them; sender and consumer use
// separate pools.

async function measure(
  url: string,
  queue: string,
  listen: boolean,
  count: number,
): Promise<{ latencies: number[]; sends: number[] }> {
  const sender = new QueueClient({ connectionString: url, maxConnections: 2 });
  const receiver = new QueueClient({ connectionString: url, maxConnections: 2 });
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  const sends: number[] = [];
  const consumer = receiver.consume<{ i: number }>(queue, {
    listen,
    pollIntervalMs: 100,
    batchSize: 10,
  });
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const loop = (async () => {
    for await (const d of consumer) {
      const t = performance.now();
      const i = d.message.i;
      const s = sentAt.get(i);
      if (s !== undefined) latencies.push(t - s);
      await d.delete();
      if (latencies.length === count) resolveAll();
    }
  })();
  try {
    // Until the consumer listens, a notification could be missed: wait for it.
    while (listen && !consumer.isListening) await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < count; i++) {
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 30));
      const t = performance.now();
      sentAt.set(i, t);
      await sender.send(queue, { i });
      sends.push(performance.now() - t);
    }
    await all;
  } finally {
    consumer.stop();
    await loop;
    await sender.close();
    await receiver.close();
  }
  return { latencies: latencies.sort((a, b) => a - b), sends: sends.sort((a, b) => a - b) };
}

export const queueWakeupSection: BenchSection = {
  name: 'queue-wakeup',
  description: 'send → consumer has it: LISTEN/NOTIFY vs polling every 100 ms (p50, p99)',
  async run(ctx) {
    await migrate({ connectionString: ctx.url, components: ['queue'] });
    const admin = new QueueClient({ connectionString: ctx.url, maxConnections: 1 });
    try {
      await admin.createQueue('wake_listen');
      await admin.enableNotifyInsert('wake_listen', { throttleIntervalMs: 0 });
      await admin.createQueue('wake_poll');
      const n = ctx.size(300, 5);
      const { latencies: poll } = await measure(ctx.url, 'wake_poll', false, n);
      const { latencies: listen, sends } = await measure(ctx.url, 'wake_listen', true, n);
      // The floor: the send itself (INSERT + commit, with the NOTIFY) is part of every figure.
      ctx.log(
        `send() alone (with NOTIFY): p50 ${percentile(sends, 50).toFixed(2)} ms, p99 ${percentile(sends, 99).toFixed(2)} ms`,
      );
      for (const p of [50, 99]) {
        ctx.report({
          section: 'queue-wakeup',
          operation: `wake-up latency p${p}, LISTEN (throttle 0)`,
          value: percentile(listen, p),
          unit: 'ms',
          ...(p === 50 ? { target: { max: 5 } } : {}),
        });
        ctx.report({
          section: 'queue-wakeup',
          operation: `wake-up latency p${p}, polling every 100 ms`,
          value: percentile(poll, p),
          unit: 'ms',
        });
      }
      ctx.log(
        `LISTEN p50 is ${(percentile(poll, 50) / percentile(listen, 50)).toFixed(1)}× lower than polling's`,
      );
    } finally {
      await admin.close();
    }
  },
};
