import { QueueClient } from 'pgferry';

const client = new QueueClient({ connectionString: process.env.DATABASE_URL });
await client.createQueue('events');

await client.enableFastMetrics('events'); // counts once, then keeps the count
await client.metrics('events'); // same figures, no table scan

await client.close();
