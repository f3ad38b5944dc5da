import { QueueClient } from 'pgferry';

interface Order {
  orderId: number;
}
const client = new QueueClient({ connectionString: process.env.DATABASE_URL });
await client.createQueue('orders');
await client.sendBatch<Order>('orders', [{ orderId: 1 }, { orderId: 2 }]);

const handled: number[] = [];
const handle = async (order: Order): Promise<void> => void handled.push(order.orderId);

const ac = new AbortController();
for await (const msg of client.consume<Order>('orders', {
  visibilityTimeoutMs: 30_000, // how long a fetched message stays yours (default 30000)
  batchSize: 10, // messages per read (default 10)
  pollIntervalMs: 250, // wait after an empty read (default 250)
  signal: ac.signal, // abort to stop
})) {
  await handle(msg.message);
  await msg.archive(); // or delete(), extend(seconds), release(delaySeconds) — PGMQ's seconds
  if (handled.length === 2) ac.abort();
}
await client.close();
