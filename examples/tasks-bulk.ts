import assert from 'node:assert/strict';
import { defineTask, TaskClient } from 'pgferry/tasks';

const invoice = defineTask<{ customer: number; month: string }>({
  name: 'invoice',
  handler: () => undefined,
});
const tasks = new TaskClient({ connectionString: process.env.DATABASE_URL });
for (const customer of [1, 2, 2])
  await tasks.enqueue(invoice, { customer, month: '2026-01' }, { delayMs: 60_000 });

// Cancel every scheduled job of customer 2 (JSON containment on the input); returns how many.
assert.equal(await tasks.cancelJobs(invoice, { state: 'scheduled', payload: { customer: 2 } }), 2);
// Retry all dead and retrying jobs of the task (none here).
assert.equal(await tasks.retryJobs(invoice), 0);
// Delete the cancelled ones for good.
assert.equal(await tasks.deleteJobs(invoice, { state: ['cancelled'] }), 2);
await tasks.close();
