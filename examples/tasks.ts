import { z } from 'zod';
import { defineTask, TaskClient, Worker } from 'pgferry/tasks';

const url = process.env.DATABASE_URL;
const mailer = {
  send: async ({ to }: { to: string; signal: AbortSignal }) => console.log(`mail to ${to}`),
};

export const sendEmail = defineTask({
  name: 'send_email',
  schema: z.object({ to: z.string().email() }), // any Standard Schema validator, or a plain type
  maxRetries: 5, // backoff with jitter
  timeoutMs: 30_000, // the handler's signal aborts at the timeout
  handler: async ({ to }, { signal }) => mailer.send({ to, signal }),
});

const tasks = new TaskClient({ connectionString: url });
await tasks.enqueue(sendEmail, { to: 'a@example.com' }, { idempotencyKey: 'welcome-42' });
await tasks.close();

const worker = new Worker({ connectionString: url, tasks: [sendEmail], concurrency: 20 });
console.log(await worker.runUntilIdle()); // in production: await worker.run(), or `pgferry worker ./tasks.js`
