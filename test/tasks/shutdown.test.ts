import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { WorkerShutdownError } from '../../src/tasks/errors.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { sleep, taskClient, worker } from './helpers.js';

const db = useTestDatabase();

describe('tasks: graceful shutdown', () => {
  it('loses nothing and runs nothing twice when workers stop mid-stream', async () => {
    const runs = new Map<number, number>();
    const t = defineTask<{ i: number }>({
      name: 'steady',
      handler: async ({ i }) => {
        runs.set(i, (runs.get(i) ?? 0) + 1);
        await sleep(2 + (i % 5));
      },
    });
    const client = taskClient(db);
    await client.enqueueBatch(
      t,
      Array.from({ length: 300 }, (_, i) => ({ input: { i } })),
    );
    const first = worker(db, { tasks: [t], concurrency: 8, batchSize: 40 });
    const second = worker(db, { tasks: [t], concurrency: 8, batchSize: 40 });
    await Promise.all([first.start(), second.start()]);
    await eventually(() => runs.size >= 60);
    await first.stop(); // in-flight handlers finish, buffered jobs go back
    const third = worker(db, { tasks: [t], concurrency: 4 });
    await third.start();
    await eventually(() => runs.size >= 200);
    await second.stop();
    await eventually(
      async () =>
        (await db.sql(`SELECT count(*)::int AS n FROM ${db.queueSchema}.a_steady`))[0]!.n === 300,
      20_000,
    );
    await third.stop();
    expect(runs.size).toBe(300);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    const left = await db.sql(`SELECT count(*)::int AS n FROM ${db.queueSchema}.q_steady`);
    expect(left[0]!.n).toBe(0);
  });

  it('aborts handlers still running after the grace period and hands their jobs back untouched', async () => {
    let reason: unknown;
    let attempts: number[] = [];
    const t = defineTask<{ i: number }>({
      name: 'stubborn',
      handler: async (_i, ctx) => {
        attempts.push(ctx.job.attempt);
        if (attempts.length === 1) {
          await new Promise<void>((resolve) =>
            ctx.signal.addEventListener('abort', () => resolve()),
          );
          reason = ctx.signal.reason;
        }
      },
    });
    const client = taskClient(db);
    const job = await client.enqueue(t, { i: 1 });
    const w = worker(db, { tasks: [t] });
    await w.start();
    await eventually(() => attempts.length === 1);
    await w.stop(100);
    expect(reason).toBeInstanceOf(WorkerShutdownError);
    const back = await client.getJob(t, job.id);
    expect(back).toMatchObject({ state: 'queued', attempts: 0 }); // the lost lease does not count
    attempts = [0];
    const w2 = worker(db, { tasks: [t] });
    await w2.runUntilIdle();
    expect(attempts).toEqual([0, 1]);
    expect((await client.getJob(t, job.id))!.state).toBe('completed');
  });
});
