import { QueueClient } from 'pgferry';

// e.g. PgBouncer's port for statements, the server's own port for LISTEN
const pooledUrl = process.env.POOLED_DATABASE_URL ?? process.env.DATABASE_URL;
const directUrl = process.env.DATABASE_URL;

const client = new QueueClient({
  connectionString: pooledUrl,
  pooler: 'transaction', // no named prepared statements
  listenConnectionString: directUrl, // LISTEN here; without it consumers poll
});
await client.createQueue('orders');
await client.send('orders', { orderId: 1 });
await client.close();
