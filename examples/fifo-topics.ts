import { QueueClient } from 'pgferry';

const client = new QueueClient({ connectionString: process.env.DATABASE_URL });
for (const q of ['orders', 'billing']) await client.createQueue(q);
const order = { orderId: 7, customer: 3 };

await client.send('orders', order, { headers: { 'x-pgmq-group': `customer-${order.customer}` } });
const ac = new AbortController();
for await (const m of client.consume('orders', { mode: 'grouped', signal: ac.signal })) {
  await m.archive(); // in order per group
  ac.abort();
}

await client.bindTopic('orders.#', 'billing');
await client.sendTopic('orders.eu.created', order); // → every queue bound to a matching pattern

await client.enableNotifyInsert('orders'); // consumers wake on LISTEN/NOTIFY instead of polling
await client.close();
