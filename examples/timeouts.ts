import { QueueClient } from 'pgferry';

const client = new QueueClient({
  connectionString: process.env.DATABASE_URL,
  connectTimeoutMs: 5_000,
  queryTimeoutMs: 60_000, // or 0: no client-side statement deadline
  keepAliveMs: 10_000,
});
await client.createQueue('orders');
await client.close();
