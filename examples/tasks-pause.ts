import assert from 'node:assert/strict';
import { defineTask, TaskClient, Worker } from 'pgferry/tasks';

const ran: number[] = [];
const charge = defineTask<{ order: number }>({
  name: 'charge',
  handler: ({ order }) => void ran.push(order),
});
const tasks = new TaskClient({ connectionString: process.env.DATABASE_URL });
await tasks.ensure(charge);

// Every worker stops starting jobs of `charge` (SQL: SELECT pgferry_tasks.pause('charge')).
await tasks.pause(charge);
await tasks.enqueue(charge, { order: 1 });
await new Worker({ client: tasks, tasks: [charge] }).runUntilIdle();
assert.deepEqual(ran, []); // nothing ran while paused
assert.equal(await tasks.isPaused(charge), true);

// Wakes the sleeping workers: no restart needed.
await tasks.resume(charge);
await new Worker({ client: tasks, tasks: [charge] }).runUntilIdle();
assert.deepEqual(ran, [1]);
await tasks.close();
