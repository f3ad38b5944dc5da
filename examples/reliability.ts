import { QueueClient } from 'pgferry';

const client = new QueueClient({ connectionString: process.env.DATABASE_URL });
await client.createQueue('orders');
await client.createQueue('orders_dlq');

await client.createPartitionedQueue('events', {
  partitionInterval: '1 day',
  retentionInterval: '30 days',
}); // no pg_partman
await client.setDeadLetterPolicy('orders', { deadLetterQueue: 'orders_dlq', maxReadCount: 5 });
await client.setArchiveRetention('orders', { retentionMs: 7 * 86_400_000 });
await client.enableFastMetrics('events'); // exact metrics() without scanning the table
const maintenance = await client.maintenance({ intervalMs: 60_000 }).start(); // partitions ahead, retention

await maintenance.stop();
await client.close();
