import assert from 'node:assert/strict';
import { defineTask, TaskClient, Worker } from 'pgferry/tasks';

const called: string[] = [];
// At most 2 calls per second to each API host, across every worker and process.
const callApi = defineTask<{ host: string; path: string }>({
  name: 'call_api',
  rateLimit: { limit: 2, periodMs: 1000, perKey: true },
  handler: ({ host, path }) => void called.push(`${host}${path}`),
});
const tasks = new TaskClient({ connectionString: process.env.DATABASE_URL });
for (const path of ['/a', '/b', '/c'])
  await tasks.enqueue(callApi, { host: 'api.example.com', path }, { rateKey: 'api.example.com' });
await tasks.enqueue(
  callApi,
  { host: 'other.example.com', path: '/x' },
  { rateKey: 'other.example.com' },
);

// Runs what may run now: two of api.example.com (the third waits for the next second), one of the other host.
await new Worker({ client: tasks, tasks: [callApi] }).runUntilIdle();
assert.equal(called.length, 3);
assert.equal(called.filter((c) => c.startsWith('api.')).length, 2);
await tasks.close();
