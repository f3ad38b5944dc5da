import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { JobCancelledError } from '../../src/tasks/errors.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, worker } from './helpers.js';

const db = useTestDatabase();

describe('tasks: cancellation', () => {
  it('cancels a queued job (it never runs) and a running one (its signal aborts, its result is dropped)', async () => {
    const ran: number[] = [];
    let reason: unknown;
    const t = defineTask<{ i: number }>({
      name: 'cancellable',
      handler: async ({ i }, ctx) => {
        ran.push(i);
        if (i === 1) {
          await new Promise<void>((resolve) =>
            ctx.signal.addEventListener('abort', () => resolve()),
          );
          reason = ctx.signal.reason;
        }
      },
    });
    const client = taskClient(db);
    const queued = await client.enqueue(t, { i: 0 }, { delayMs: 500 });
    expect(await client.cancel(t, queued.id)).toBe('queued');
    expect((await client.getJob(t, queued.id))!.state).toBe('cancelled');
    const cancelled: number[] = [];
    const w = worker(db, { tasks: [t], hooks: { 'job:cancelled': (j) => cancelled.push(j.id) } });
    await w.start();
    const running = await client.enqueue(t, { i: 1 });
    await eventually(() => ran.includes(1));
    expect((await client.getJob(t, running.id))!.state).toBe('running');
    expect(await client.cancel(t, running.id)).toBe('running');
    await eventually(() => cancelled.includes(running.id));
    expect(reason).toBeInstanceOf(JobCancelledError);
    expect((await client.getJob(t, running.id))!.state).toBe('cancelled');
    expect(await client.cancel('cancellable', running.id)).toBe('not_found');
    // Run something after, to be sure the cancelled delayed job never runs.
    const after = await client.enqueue(t, { i: 2 });
    await eventually(async () => (await client.getJob(t, after.id))?.state === 'completed');
    // The cancelled delayed job left the queue, so no worker can ever lease it.
    const left = await db.sql(
      `SELECT count(*)::int AS n FROM ${db.queueSchema}.q_cancellable WHERE msg_id = $1`,
      [queued.id],
    );
    expect(left[0]!.n).toBe(0);
    expect(ran).not.toContain(0);
    await w.stop();
  });
});
