import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { QueueNotFoundError } from '../../src/index.js';
import { TaskClient } from '../../src/tasks/client.js';
import { defineTask } from '../../src/tasks/define.js';

const db = useTestDatabase();
const S = db.queueSchema;

describe('TaskClient after its queue was dropped behind its back', () => {
  it('re-ensures the task once and enqueues (single and batch)', async () => {
    const tc = db.track(new TaskClient({ connectionString: db.url, queueSchema: S }));
    const task = defineTask<number>({ name: 'dropped_task', handler: async () => undefined });
    await tc.enqueue(task, 1);
    await db.sql(`SELECT ${S}.drop_queue('dropped_task')`);
    const job = await tc.enqueue(task, 2);
    expect(job.id).toBeGreaterThan(0);
    await db.sql(`SELECT ${S}.drop_queue('dropped_task')`);
    const jobs = await tc.enqueueBatch(task, [{ input: 3 }, { input: 4 }]);
    expect(jobs).toHaveLength(2);
    const rows = await db.sql<{ message: number }>(
      `SELECT message FROM ${S}.q_dropped_task ORDER BY msg_id`,
    );
    expect(rows.map((r) => r.message)).toEqual([3, 4]);
  });

  it('inside the caller transaction it does not retry (the transaction is already aborted)', async () => {
    const tc = db.track(new TaskClient({ connectionString: db.url, queueSchema: S }));
    const task = defineTask<number>({ name: 'dropped_tx', handler: async () => undefined });
    await tc.enqueue(task, 1);
    await db.sql(`SELECT ${S}.drop_queue('dropped_tx')`);
    let caught: unknown;
    await tc
      .transaction(async (tx) => {
        await tc.enqueue(task, 2, { tx });
      })
      .catch((err: unknown) => (caught = err));
    expect(caught).toBeInstanceOf(QueueNotFoundError);
    // Outside a transaction the next call recovers.
    expect((await tc.enqueue(task, 3)).id).toBeGreaterThan(0);
  });
});
