import assert from 'node:assert/strict';
import { defineTask, TaskClient, Worker } from 'pgferry/tasks';

let running = 0;
let peak = 0;
// Up to 2 jobs of one tenant at a time (across all workers), started in enqueue order.
const sync = defineTask<{ tenant: string; page: number }>({
  name: 'sync_tenant',
  grouped: true,
  groupConcurrency: 2,
  handler: async () => {
    peak = Math.max(peak, ++running);
    await new Promise((r) => setTimeout(r, 50));
    running--;
  },
});
const tasks = new TaskClient({ connectionString: process.env.DATABASE_URL });
for (let page = 1; page <= 6; page++)
  await tasks.enqueue(sync, { tenant: 'acme', page }, { group: 'acme' });

await new Worker({ client: tasks, tasks: [sync], concurrency: 10 }).runUntilIdle();
assert.equal(peak, 2);
await tasks.close();
