import { QueueClient } from 'pgferry';

const client = new QueueClient({ connectionString: process.env.DATABASE_URL });
await client.createPartitionedQueue('events', {
  partitionInterval: 100_000,
  retentionInterval: 1_000_000,
}); // by msg_id
await client.createPartitionedQueue('audit', {
  partitionInterval: '1 day',
  retentionInterval: '30 days',
}); // by time
const maintenance = await client.maintenance({ intervalMs: 60_000 }).start();

await maintenance.stop();
await client.close();
