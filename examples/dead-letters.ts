import { QueueClient } from 'pgferry';

const client = new QueueClient({ connectionString: process.env.DATABASE_URL });
await client.createQueue('orders');

await client.createQueue('orders_dlq');
await client.setDeadLetterPolicy('orders', { deadLetterQueue: 'orders_dlq', maxReadCount: 5 });
const dead = await client.listDeadLetters('orders_dlq'); // dead[0].origin: { sourceQueue, sourceMsgId, readCount, enqueuedAt, movedAt }
await client.requeueDeadLetters('orders_dlq', { sourceQueue: 'orders' });

console.log(dead.length);
await client.close();
