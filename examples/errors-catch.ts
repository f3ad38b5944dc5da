import { QueueClient, QueueNotFoundError } from 'pgferry';

const client = new QueueClient({ connectionString: process.env.DATABASE_URL });
const name = 'created_on_first_send';
const payload = { hello: 'world' };

try {
  await client.send(name, payload);
} catch (err) {
  if (err instanceof QueueNotFoundError) await client.createQueue(name);
  else throw err;
}
await client.close();
