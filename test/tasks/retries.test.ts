import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { JobTimeoutError } from '../../src/tasks/errors.js';
import { retryDelayMs } from '../../src/tasks/backoff.js';
import type { JobInfo } from '../../src/tasks/types.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, worker } from './helpers.js';

const db = useTestDatabase();

class Transient extends Error {
  override name = 'Transient';
}
class Fatal extends Error {
  override name = 'Fatal';
}

describe('tasks: retries, timeouts, dead letters', () => {
  it('computes exponential backoff with jitter, fixed delays and custom functions', () => {
    const exp = { kind: 'exponential', baseDelayMs: 100, factor: 2, maxDelayMs: 1000 } as const;
    expect(retryDelayMs({ ...exp, jitter: false }, 1, null)).toBe(100);
    expect(retryDelayMs({ ...exp, jitter: false }, 3, null)).toBe(400);
    expect(retryDelayMs({ ...exp, jitter: false }, 10, null)).toBe(1000);
    expect(retryDelayMs(exp, 3, null, () => 0)).toBe(200);
    expect(retryDelayMs(exp, 3, null, () => 0.999999)).toBe(400);
    expect(retryDelayMs({ kind: 'fixed', delayMs: 250 }, 7, null)).toBe(250);
    expect(retryDelayMs((attempt) => attempt * 10, 4, null)).toBe(40);
  });

  it('retries with backoff until success, and records the last error on the job', async () => {
    const attempts: { at: number; attempt: number }[] = [];
    const t = defineTask<{ n: number }>({
      name: 'flaky',
      maxRetries: 3,
      backoff: { kind: 'exponential', baseDelayMs: 150, factor: 2, jitter: false },
      retryOn: [Transient],
      handler: (_input, ctx) => {
        attempts.push({ at: Date.now(), attempt: ctx.job.attempt });
        if (ctx.job.attempt < 3) throw new Transient(`try ${ctx.job.attempt}`);
      },
    });
    const client = taskClient(db);
    const retries: number[] = [];
    const w = worker(db, {
      tasks: [t],
      hooks: { 'job:retry': (_j, _e, delay) => retries.push(delay) },
    });
    await w.start();
    const job = await client.enqueue(t, { n: 1 });
    await eventually(async () => (await client.getJob(t, job.id))?.state === 'completed', 10_000);
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    expect(retries).toEqual([150, 300]);
    // The waits honour the delays (the wake-up timer fires at the retry's run time).
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(140);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(290);
    const done = await client.getJob(t, job.id);
    expect((done!.headers['x-pgferry-last-error'] as { message: string }).message).toBe('try 2');
    await w.stop();
  });

  it('sends errors retryOn does not name straight to the dead-letter queue, with references both ways', async () => {
    let calls = 0;
    const t = defineTask<{ order: number }>({
      name: 'picky',
      maxRetries: 5,
      retryOn: (e) => e instanceof Transient,
      handler: () => {
        calls++;
        throw new Fatal('card declined');
      },
    });
    const client = taskClient(db);
    const dead: { job: JobInfo; id: number | null }[] = [];
    const w = worker(db, {
      tasks: [t],
      hooks: { 'job:dead': (job, _e, id) => dead.push({ job, id }) },
    });
    await w.start();
    const job = await client.enqueue(t, { order: 7 }, { idempotencyKey: 'order-7' });
    await eventually(() => dead.length === 1);
    expect(calls).toBe(1);
    const dl = client.deadLetters(t);
    const letter = await dl.get(dead[0]!.id!);
    expect(letter).toMatchObject({
      input: { order: 7 },
      attempts: 1,
      originalId: job.id,
      error: { class: 'Fatal', name: 'Fatal', message: 'card declined' },
    });
    // The one dead-letter record shape (docs/concepts.md).
    expect(letter).toMatchObject({
      id: dead[0]!.id,
      source: 'picky',
      sourceId: job.id,
      payload: { order: 7 },
      reason: 'card declined',
      attempts: 1,
    });
    expect(letter!.error.stack).toMatch(/card declined/);
    expect(letter!.failedAt).toBeInstanceOf(Date);
    expect(letter!.enqueuedAt).toBeInstanceOf(Date);
    expect(letter!.headers['x-pgferry-original-queue']).toBe('picky');
    const archived = await client.getJob(t, job.id);
    expect(archived!.state).toBe('dead');
    expect(archived!.headers['x-pgferry-dead-letter-id']).toBe(letter!.id);
    // The key is free again: the dead job no longer holds it.
    expect((await client.enqueue(t, { order: 7 }, { idempotencyKey: 'order-7' })).duplicate).toBe(
      false,
    );
    await w.stop();
  });

  it('aborts a handler at its timeout, retries it, and never lets two workers hold it at once', async () => {
    const runs: {
      worker: string;
      attempt: number;
      start: number;
      end?: number;
      aborted?: unknown;
    }[] = [];
    const t = defineTask<{ x: number }>({
      name: 'slowpoke',
      timeoutMs: 300,
      maxRetries: 2,
      backoff: { kind: 'fixed', delayMs: 0 },
      handler: async (_i, ctx) => {
        const run: (typeof runs)[number] = {
          worker: String(ctx.job.headers['w'] ?? ''),
          attempt: ctx.job.attempt,
          start: Date.now(),
        };
        runs.push(run);
        if (ctx.job.attempt === 1) {
          // Ignores its signal for a while: the attempt still fails at the timeout.
          await new Promise((r) => setTimeout(r, 600));
          run.aborted = ctx.signal.reason;
        }
        run.end = Date.now();
      },
    });
    const client = taskClient(db);
    const w1 = worker(db, { tasks: [t], leaseMarginMs: 1000 });
    const w2 = worker(db, { tasks: [t], leaseMarginMs: 1000 });
    await Promise.all([w1.start(), w2.start()]);
    const job = await client.enqueue(t, { x: 1 });
    await eventually(async () => (await client.getJob(t, job.id))?.state === 'completed', 10_000);
    expect(runs.map((r) => r.attempt)).toEqual([1, 2]);
    expect(runs[0]!.aborted).toBeInstanceOf(JobTimeoutError);
    // Attempt 2 began only after attempt 1's handler returned (it had the
    // lease margin to do so), so the two never overlapped.
    expect(runs[1]!.start).toBeGreaterThanOrEqual(runs[0]!.end!);
    const last = await client.getJob(t, job.id);
    expect((last!.headers['x-pgferry-last-error'] as { class: string }).class).toBe(
      'JobTimeoutError',
    );
    await Promise.all([w1.stop(), w2.stop()]);
  });

  it('lists, inspects, reschedules (one, filtered, all) and purges dead letters', async () => {
    const t = defineTask<{ k: string; ok?: boolean }>({
      name: 'dlqops',
      maxRetries: 0,
      handler: (input) => {
        if (!input.ok) throw input.k.startsWith('t') ? new Transient(input.k) : new Fatal(input.k);
      },
    });
    const client = taskClient(db);
    const w = worker(db, { tasks: [t] });
    await w.start();
    await client.enqueueBatch(
      t,
      ['t1', 't2', 'f1', 'f2', 'f3'].map((k) => ({ input: { k } })),
    );
    const dl = client.deadLetters(t);
    await eventually(async () => (await dl.count()) === 5);
    await w.stop();
    const all = await dl.list();
    expect(all.map((d) => d.input)).toEqual(expect.arrayContaining([{ k: 't1' }, { k: 'f3' }]));
    expect(await dl.list({ errorName: 'Transient' })).toHaveLength(2);
    const one = await dl.requeue({ ids: [all[0]!.id] });
    expect(one).toHaveLength(1);
    const resched = await client.getJob(t, one[0]!.newId);
    expect(resched!.state).toBe('queued');
    expect(resched!.headers['x-pgferry-rescheduled-from']).toBe(all[0]!.id);
    expect(resched!.headers['x-pgferry-rescheduled-from-msg-id']).toBe(all[0]!.originalId);
    expect(resched!.headers['x-pgferry-error']).toBeUndefined();
    const archived = await db.sql<{ headers: Record<string, unknown> }>(
      `SELECT headers FROM ${db.queueSchema}.a_dlqops_dlq WHERE msg_id = $1`,
      [all[0]!.id],
    );
    expect(archived[0]!.headers['x-pgferry-rescheduled-as']).toBe(one[0]!.newId);
    const transient = await dl.requeue({ errorName: 'Transient' });
    expect(transient.length).toBe(all[0]!.error.name === 'Transient' ? 1 : 2);
    expect(await dl.purge({ ids: [(await dl.list())[0]!.id] })).toBe(1);
    const rest = await dl.count();
    expect(await dl.requeue({ all: true })).toHaveLength(rest);
    expect(await dl.count()).toBe(0);
    await client.enqueue(t, { k: 'f9' });
    const w2 = worker(db, { tasks: [t] });
    await w2.runUntilIdle();
    expect(await dl.purge({ all: true })).toBeGreaterThan(0);
    expect(await dl.count()).toBe(0);
  });
});
