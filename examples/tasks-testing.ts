import assert from 'node:assert/strict';
import { defineTask, TaskClient } from 'pgferry/tasks';
import { runTask, drainTasks, queuedJobs } from 'pgferry/testing';

const sent: string[] = [];
const sendEmail = defineTask({
  name: 'send_email',
  handler: async ({ to }: { to: string; subject: string }) => void sent.push(to),
});
const connectionString = process.env.DATABASE_URL;
const client = new TaskClient({ connectionString });
await client.enqueue(sendEmail, { to: 'b@example.com', subject: 'hi' });

await runTask(sendEmail, { to: 'a@example.com', subject: 'hi' }); // validated, inline, no database
await drainTasks({ connectionString, tasks: [sendEmail] }); // runs what is runnable now, then returns
assert.equal((await queuedJobs(client, sendEmail)).length, 0);
assert.deepEqual(sent, ['a@example.com', 'b@example.com']);
await client.close();
