import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { parseFlags } from '../flags.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../embedded/server.js';
import { migrate } from '../../migrate/migrator.js';
import { QueueClient } from '../../queue/index.js';

interface Order {
  orderId: number;
  producer: number;
  sentAt: number;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'producers and consumers moving messages, with live progress',
  usage: `pgferry demo [options]

Runs producers and consumers against DATABASE_URL, or against an embedded
PostgreSQL started for the demo (and removed after) when it is not set.

Options:
  --seconds <n>     how long to run (default: 8)
  --producers <n>   producer loops, each sending batches (default: 2)
  --consumers <n>   consumer loops (default: 3)
  --batch <n>       messages per send_batch (default: 20)
  --rate <n>        messages per second the producers offer together (default: 2000)
  -h, --help        show this help`,
  async run(argv) {
    const { values } = parseFlags(argv, {
      seconds: { type: 'string', default: '8' },
      producers: { type: 'string', default: '2' },
      consumers: { type: 'string', default: '3' },
      batch: { type: 'string', default: '20' },
      rate: { type: 'string', default: '2000' },
    });
    const num = (name: keyof typeof values, min: number): number => {
      const n = Number(values[name]);
      if (!Number.isInteger(n) || n < min)
        throw new UsageError(`--${name} must be an integer ≥ ${min}`);
      return n;
    };
    const seconds = num('seconds', 1);
    const producers = num('producers', 1);
    const consumers = num('consumers', 1);
    const batch = num('batch', 1);
    const rate = num('rate', 1);

    let server: EmbeddedPostgres | undefined;
    let dataDir: string | undefined;
    let url = process.env.DATABASE_URL;
    if (!url) {
      dataDir = mkdtempSync(join(tmpdir(), 'pgferry-demo-'));
      console.log('No DATABASE_URL: starting an embedded PostgreSQL for the demo…');
      server = await startEmbeddedPostgres({ dataDir, persistent: false });
      url = server.url;
    }
    try {
      const migrated = await migrate({ connectionString: url, components: ['queue'] });
      console.log(`Schema pgmq ready (${migrated.applied.length} migration(s) applied).`);
      return await runDemo(url, { seconds, producers, consumers, batch, rate });
    } finally {
      if (server) await server.stop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    }
  },
};

async function runDemo(
  url: string,
  o: { seconds: number; producers: number; consumers: number; batch: number; rate: number },
): Promise<number> {
  const client = new QueueClient({
    connectionString: url,
    maxConnections: o.producers + o.consumers + 2,
  });
  const queue = client.queue<Order>('pgferry_demo_orders');
  await queue.drop();
  await queue.create();
  // Consumers wake on LISTEN/NOTIFY instead of waiting out their poll interval.
  await client.enableNotifyInsert('pgferry_demo_orders', { throttleIntervalMs: 0 });
  const producing = new AbortController();
  const consuming = new AbortController();
  let sent = 0;
  let consumed = 0;
  let duplicates = 0;
  const latencies: number[] = [];
  const seen = new Set<number>();
  let nextOrder = 0;
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  // Producers send a batch every `interval` ms, so together they offer `rate` messages/s.
  const interval = (1000 * o.batch * o.producers) / o.rate;
  const producerLoops = Array.from({ length: o.producers }, async (_, p) => {
    let due = Date.now();
    while (!producing.signal.aborted) {
      const orders = Array.from({ length: o.batch }, () => ({
        orderId: ++nextOrder,
        producer: p,
        sentAt: Date.now(),
      }));
      await queue.sendBatch(orders);
      sent += orders.length;
      due += interval;
      await sleep(Math.max(0, due - Date.now()));
    }
  });
  // Consumers: the async iterator, archiving each message when handled.
  const consumerLoops = Array.from({ length: o.consumers }, async () => {
    for await (const msg of queue.consume({
      batchSize: 50,
      pollIntervalMs: 25,
      visibilityTimeoutMs: 30_000,
      signal: consuming.signal,
    })) {
      if (seen.has(msg.message.orderId)) duplicates++;
      seen.add(msg.message.orderId);
      latencies.push(Date.now() - msg.message.sentAt);
      await msg.archive();
      consumed++;
    }
  });

  const tty = process.stdout.isTTY;
  const started = Date.now();
  let lastSent = 0;
  let lastConsumed = 0;
  const progress = async (): Promise<void> => {
    const m = await queue.metrics().catch(() => undefined);
    const line =
      `t=${((Date.now() - started) / 1000).toFixed(0).padStart(2)}s  sent ${sent.toLocaleString('en-US').padStart(7)} ` +
      `(+${(sent - lastSent).toLocaleString('en-US')}/s)  consumed ${consumed.toLocaleString('en-US').padStart(7)} ` +
      `(+${(consumed - lastConsumed).toLocaleString('en-US')}/s)  waiting in queue ${m?.queueLength ?? '?'}`;
    lastSent = sent;
    lastConsumed = consumed;
    if (tty) process.stdout.write(`\r${line}   `);
    else console.log(line);
  };
  const ticker = setInterval(() => void progress(), 1000);

  console.log(
    `Running ${o.producers} producer(s) offering ${o.rate} msg/s and ${o.consumers} consumer(s) for ${o.seconds}s on queue pgferry_demo_orders…`,
  );
  await sleep(o.seconds * 1000);
  producing.abort();
  await Promise.all(producerLoops);
  // Consumers drain what is left (at most 30 s), then stop.
  const deadline = Date.now() + 30_000;
  while (consumed < sent && Date.now() < deadline) await sleep(50);
  consuming.abort();
  await Promise.all(consumerLoops);
  clearInterval(ticker);
  await progress();
  if (tty) process.stdout.write('\n');
  latencies.sort((a, b) => a - b);
  const p = (q: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  const m = await queue.metrics();
  console.log(
    `Done: sent ${sent.toLocaleString('en-US')}, consumed ${consumed.toLocaleString('en-US')}, left ${m.queueLength}, ` +
      `duplicates ${duplicates}; send→consume latency p50 ${p(0.5)} ms, p99 ${p(0.99)} ms.`,
  );
  await queue.drop();
  await client.close();
  return sent === consumed && duplicates === 0 ? 0 : 1;
}
