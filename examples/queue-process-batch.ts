import { QueueClient } from 'pgferry';

interface Order {
  orderId: number;
}
const client = new QueueClient({ connectionString: process.env.DATABASE_URL });
await client.createQueue('orders');
await client.driver.query('CREATE TABLE IF NOT EXISTS shipped (order_id int)');
await client.sendBatch<Order>('orders', [{ orderId: 1 }, { orderId: 2 }]);

// each batch and its writes commit together; stop when the queue is empty
while (
  (await client.processBatch<Order>(
    'orders',
    async (msgs, tx) => {
      for (const m of msgs)
        await tx.query('INSERT INTO shipped (order_id) VALUES ($1)', [m.message.orderId]);
    },
    { qty: 100, finish: 'delete' },
  )) > 0
);
await client.close();
