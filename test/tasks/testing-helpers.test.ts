import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../../src/tasks/define.js';
import { JobTimeoutError, TaskValidationError } from '../../src/tasks/errors.js';
import { drainTasks, queuedJobs, runTask } from '../../src/testing/index.js';
import { useTestDatabase } from '../support/db.js';
import { taskClient } from './helpers.js';

const db = useTestDatabase();

describe('pgferry/testing', () => {
  it('runTask validates and runs a handler inline, with a signal that fires at the timeout', async () => {
    const t = defineTask({
      name: 'inline',
      schema: z.object({ n: z.number(), when: z.coerce.date() }),
      timeoutMs: 50,
      handler: async (input, ctx) => {
        if (input.n < 0) {
          await new Promise((r) => ctx.signal.addEventListener('abort', r));
          throw ctx.signal.reason;
        }
        return {
          doubled: input.n * 2,
          year: input.when.getUTCFullYear(),
          attempt: ctx.job.attempt,
        };
      },
    });
    expect(await runTask(t, { n: 2, when: '2024-05-01' }, { attempt: 3 })).toEqual({
      doubled: 4,
      year: 2024,
      attempt: 3,
    });
    await expect(
      runTask(t, { n: 'x' } as unknown as { n: number; when: string }),
    ).rejects.toBeInstanceOf(TaskValidationError);
    await expect(runTask(t, { n: -1, when: '2024-05-01' })).rejects.toBeInstanceOf(JobTimeoutError);
  });

  it('drainTasks runs everything runnable now, including immediate retries, then returns', async () => {
    const seen: number[] = [];
    let failOnce = true;
    const t = defineTask<{ i: number }>({
      name: 'drained',
      backoff: { kind: 'fixed', delayMs: 0 },
      handler: ({ i }) => {
        if (i === 3 && failOnce) {
          failOnce = false;
          throw new Error('first try fails');
        }
        seen.push(i);
      },
    });
    const later = defineTask<{ i: number }>({ name: 'drained_later', handler: () => undefined });
    const client = taskClient(db);
    await client.enqueueBatch(
      t,
      [1, 2, 3, 4].map((i) => ({ input: { i } })),
    );
    await client.enqueue(later, { i: 9 }, { delayMs: 60_000 });
    expect((await queuedJobs(client, t)).map((j) => j.input)).toEqual([
      { i: 1 },
      { i: 2 },
      { i: 3 },
      { i: 4 },
    ]);
    const summary = await drainTasks({
      connectionString: db.url,
      queueSchema: db.queueSchema,
      tasks: [t, later],
    });
    expect(summary).toEqual({ succeeded: 4, retried: 1, dead: 0 });
    expect(seen.sort()).toEqual([1, 2, 3, 4]);
    expect(await queuedJobs(client, t)).toEqual([]);
    expect(await queuedJobs(client, later)).toHaveLength(1); // delayed: left alone
  });
});
