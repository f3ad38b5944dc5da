import { QueueClient } from 'pgferry';

const client = new QueueClient({ connectionString: process.env.DATABASE_URL });
await client.createQueue('emails');
await client.createQueue('audit');

await client.transaction(async (tx) => {
  await client.send('emails', { to: 'a@example.com' }, { tx });
  await client.send('audit', { action: 'signup' }, { tx });
});
await client.close();
