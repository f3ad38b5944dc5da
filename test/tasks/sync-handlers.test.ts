// A handler that returns at once (not a promise) is recorded in the same
// tick, without a promise (src/tasks/worker/execution.ts), and the jobs
// finished in one event-loop turn share a completion statement
// (completions.ts). These tests check that nothing about a job's life changes
// on that path: each job once, events, retries, progress, ctx, stop().
import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { TaskConfigError } from '../../src/tasks/errors.js';
import type { JobContext, JobInfo } from '../../src/tasks/types.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, worker } from './helpers.js';

const db = useTestDatabase();
const count = async (table: string, where = 'true'): Promise<number> =>
  Number(
    (await db.sql(`SELECT count(*)::int AS n FROM ${db.queueSchema}.${table} WHERE ${where}`))[0]!
      .n,
  );

describe('tasks worker: handlers that return at once', () => {
  it('runs every job once, fires start and success for each, archives all', async () => {
    const seen = new Map<number, number>();
    const t = defineTask<{ i: number }>({
      name: 'sync_many',
      handler: (_input, ctx) => {
        seen.set(ctx.job.id, (seen.get(ctx.job.id) ?? 0) + 1);
      },
    });
    const client = taskClient(db);
    await client.enqueueBatch(
      t,
      Array.from({ length: 1200 }, (_, i) => ({ input: { i } })),
    );
    const w = worker(db, { tasks: [t] });
    let started = 0;
    const ok = new Set<number>();
    w.on('job:start', () => started++);
    w.on('job:success', (job: JobInfo) => ok.add(job.id));
    const summary = await w.runUntilIdle();
    expect(summary).toMatchObject({ succeeded: 1200, retried: 0, dead: 0 });
    expect(seen.size).toBe(1200);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(started).toBe(1200);
    expect(ok.size).toBe(1200);
    expect(await count('q_sync_many')).toBe(0);
    expect(await count('a_sync_many', 'read_ct = 1')).toBe(1200);
  });

  it('keeps results, progress, ctx.signal, a destructured ctx and retries', async () => {
    const signals: boolean[] = [];
    const t = defineTask<{ n: number }>({
      name: 'sync_ctx',
      maxRetries: 1,
      backoff: { kind: 'fixed', delayMs: 10 },
      handler: ({ n }, { signal, progress, job }) => {
        signals.push(signal instanceof AbortSignal && !signal.aborted);
        if (n === 1) progress({ half: true });
        if (n === 2 && job.attempt === 1) throw new Error('first attempt fails');
        return n === 0 ? undefined : { n };
      },
    });
    const client = taskClient(db);
    const [a, b, c] = await client.enqueueBatch(t, [
      { input: { n: 0 } },
      { input: { n: 1 } },
      { input: { n: 2 } },
    ]);
    const w = worker(db, { tasks: [t] });
    await w.start();
    expect(await client.waitForResult(t, a!.id, { timeoutMs: 15_000 })).toBeUndefined();
    expect(await client.waitForResult(t, b!.id, { timeoutMs: 15_000 })).toEqual({ n: 1 });
    expect(await client.waitForResult(t, c!.id, { timeoutMs: 15_000 })).toEqual({ n: 2 });
    expect((await client.result(t, b!.id)).progress).toEqual({ half: true });
    expect((await client.history(t, c!.id))!.map((x) => x.outcome)).toEqual(['retry', 'completed']);
    expect(signals).toEqual([true, true, true, true]);
    await w.stop();
  });

  it('stop() in the middle of a backlog: every finished job written, the rest handed back', async () => {
    const t = defineTask<{ i: number }>({ name: 'sync_stop', handler: () => undefined });
    const client = taskClient(db);
    await client.enqueueBatch(
      t,
      Array.from({ length: 3000 }, (_, i) => ({ input: { i } })),
    );
    const w = worker(db, { tasks: [t] });
    let ok = 0;
    w.on('job:success', () => ok++);
    await w.start();
    await eventually(() => ok > 0);
    await w.stop();
    const archived = await count('a_sync_stop');
    expect(archived).toBe(ok);
    expect(archived + (await count('q_sync_stop'))).toBe(3000);
    // Nothing left leased: what was not finished is visible again at once.
    expect(await count('q_sync_stop', 'vt > clock_timestamp()')).toBe(0);
  });

  it('a context used after its attempt: progress ignored, complete refused (its JobRun is made late)', async () => {
    let kept: JobContext | undefined;
    const t = defineTask<{ i: number }>({
      name: 'sync_late',
      handler: (_input, ctx) => {
        kept = ctx;
      },
    });
    const client = taskClient(db);
    const job = await client.enqueue(t, { i: 1 });
    const w = worker(db, { tasks: [t] });
    await w.runUntilIdle();
    expect(kept).toBeDefined();
    expect(() => kept!.progress(5)).not.toThrow();
    const err = await kept!.complete(db.driver()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskConfigError);
    expect((await client.result(t, job.id)).progress).toBeUndefined();
  });
});
