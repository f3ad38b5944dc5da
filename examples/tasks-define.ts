import { z } from 'zod';
import { ConnectionError } from 'pgferry';
import { defineTask, TaskClient, Worker } from 'pgferry/tasks';

const mailer = {
  send: async (m: { to: string; subject: string; signal: AbortSignal }) =>
    console.log(`mail to ${m.to}: ${m.subject}`),
};

export const sendEmail = defineTask({
  name: 'send_email',
  schema: z.object({ to: z.string().email(), subject: z.string() }), // any Standard Schema: zod, valibot, arktype
  maxRetries: 5,
  retryOn: [ConnectionError], // other errors go straight to the dead-letter queue
  backoff: { kind: 'exponential', baseDelayMs: 1000 }, // with jitter; or { kind: 'fixed', delayMs }
  timeoutMs: 30_000, // the handler's signal aborts at 30 s
  handler: async ({ to, subject }, { signal }) => {
    await mailer.send({ to, subject, signal });
  },
});

const tasks = new TaskClient({ connectionString: process.env.DATABASE_URL });
await tasks.enqueue(
  sendEmail,
  { to: 'a@example.com', subject: 'hi' },
  { delayMs: 500, idempotencyKey: 'welcome-42' },
);
await tasks.close();

const worker = new Worker({
  connectionString: process.env.DATABASE_URL,
  tasks: [sendEmail],
  concurrency: 20,
});
// worker.run() runs until SIGINT/SIGTERM or worker.stop(); here: stop once the mail is sent
setTimeout(() => void worker.stop(), 3000);
await worker.run();
