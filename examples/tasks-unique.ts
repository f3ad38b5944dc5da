import assert from 'node:assert/strict';
import { defineTask, TaskClient } from 'pgferry/tasks';

const report = defineTask<{ day: string }>({ name: 'daily_report', handler: () => undefined });
const reindex = defineTask<{ doc: number; rev: number }>({
  name: 'reindex',
  handler: () => undefined,
});
const tasks = new TaskClient({ connectionString: process.env.DATABASE_URL });

// Unique for an hour: a second enqueue returns the first job, even once it has finished.
const hour = { key: 'report:2026-01-01', windowMs: 3_600_000 };
const a = await tasks.enqueue(report, { day: '2026-01-01' }, { unique: hour });
const b = await tasks.enqueue(report, { day: '2026-01-01' }, { unique: hour });
assert.deepEqual([b.id, b.duplicate], [a.id, true]);

// Debounced: runs 2 s after the last edit, with the last input.
const edit = { key: 'doc:7', windowMs: 2000 };
const r1 = await tasks.enqueue(reindex, { doc: 7, rev: 1 }, { debounce: edit });
const r2 = await tasks.enqueue(reindex, { doc: 7, rev: 2 }, { debounce: edit });
assert.equal(r2.id, r1.id);
assert.deepEqual((await tasks.getJob(reindex, r1.id))?.input, { doc: 7, rev: 2 });
await tasks.close();
