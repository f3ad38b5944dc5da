import { QueueClient, migrate } from 'pgferry';

const url = process.env.DATABASE_URL;
await migrate({ connectionString: url }); // installs schema `pgmq` (and the other engines)

const client = new QueueClient({ connectionString: url });
const orders = client.queue<{ orderId: number }>('orders');
await orders.create();

await orders.send({ orderId: 42 }, { delayMs: 1000 });

const ac = new AbortController();
for await (const msg of orders.consume({ visibilityTimeoutMs: 30_000, signal: ac.signal })) {
  console.log(msg.msgId, msg.message.orderId, msg.readCount);
  await msg.archive(); // or msg.delete(), msg.extend(60), msg.release()
  ac.abort(); // one message is enough for this example
}
await client.close();
