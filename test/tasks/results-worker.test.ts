import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { TaskClient } from '../../src/tasks/client.js';
import { Pruner } from '../../src/tasks/pruner.js';
import { TaskConfigError } from '../../src/tasks/errors.js';
import { runTask } from '../../src/testing/index.js';
import {
  JobFailedError,
  JobNotHeldError,
  ResultTooLargeError,
} from '../../src/tasks/outcome-errors.js';
import { useTestDatabase } from '../support/db.js';
import { sleep, taskClient, worker } from './helpers.js';

// Results, progress, ctx.complete(tx), flows and history through a real Worker.
const db = useTestDatabase();

describe('tasks worker: results and progress', () => {
  it('stores the return value with the completion; a too-large result dead-letters the job', async () => {
    const t = defineTask<{ n: number }>({
      name: 'w_result',
      maxRetries: 3,
      handler: ({ n }) => (n < 0 ? 'x'.repeat(1_100_000) : n === 0 ? undefined : { double: n * 2 }),
    });
    const client = taskClient(db);
    const w = worker(db, { tasks: [t] });
    await w.start();
    const a = await client.enqueue(t, { n: 21 });
    const b = await client.enqueue(t, { n: 0 });
    const c = await client.enqueue(t, { n: -1 });
    expect(await client.waitForResult(t, a.id, { timeoutMs: 15_000 })).toEqual({ double: 42 });
    expect(await client.waitForResult(t, b.id, { timeoutMs: 15_000 })).toBeUndefined();
    const err = await client.waitForResult(t, c.id, { timeoutMs: 15_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobFailedError);
    expect((err as JobFailedError).jobError).toMatchObject({ class: 'ResultTooLargeError' });
    expect((await client.history(t, c.id))!.map((x) => x.outcome)).toEqual(['dead']); // not retried
    const stored = await db.sql(
      `SELECT msg_id FROM pgferry_tasks.job_results WHERE queue_name = 'w_result' AND state = 'completed'`,
    );
    expect(stored.map((r) => Number(r.msg_id))).toEqual([a.id]); // nothing stored for undefined
    await w.stop();
  });

  it('progress is coalesced (a tight loop costs a few writes) and the last value is stored', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = defineTask<{ n: number }>({
      name: 'w_progress',
      handler: async ({ n }, ctx) => {
        for (let i = 1; i <= n; i++) ctx.progress(i);
        await gate;
        ctx.progress({ phase: 'almost' }); // written at once (the interval has passed)…
        ctx.progress({ phase: 'done' }); // …this one waits, and is written before the completion
        expect(() => ctx.progress('x'.repeat(70_000))).toThrow(ResultTooLargeError);
      },
    });
    const client = new TaskClient({ connectionString: db.url, queueSchema: db.queueSchema });
    db.track(client);
    let writes = 0;
    const query = client.driver.query.bind(client.driver);
    client.driver.query = ((text: string, ...rest: unknown[]) => {
      if (text.includes('.progress(')) writes++;
      return (query as (...a: unknown[]) => unknown)(text, ...rest);
    }) as typeof client.driver.query;
    const w = worker(db, { tasks: [t], client });
    await w.start();
    const job = await client.enqueue(t, { n: 10_000 });
    await new Promise<void>((r) => {
      const poll = setInterval(() => {
        void client.getJob(t, job.id).then((j) => {
          if (j?.progress !== undefined) {
            clearInterval(poll);
            r();
          }
        });
      }, 20);
    });
    expect((await client.getJob(t, job.id))!.state).toBe('running');
    await sleep(700); // the trailing write of the loop's last value
    expect((await client.result(t, job.id)).progress).toBe(10_000);
    release();
    await client.waitForResult(t, job.id, { timeoutMs: 15_000 });
    expect((await client.getJob(t, job.id))!.progress).toEqual({ phase: 'done' });
    expect(writes).toBeGreaterThanOrEqual(2);
    expect(writes).toBeLessThanOrEqual(5); // 10,002 reports
    await w.stop();
  });
});

describe('tasks worker: ctx.complete(tx)', () => {
  it("commits the handler's writes and the completion together; a rolled-back attempt is retried", async () => {
    await db.sql(`CREATE TABLE ledger (job bigint, attempt int)`);
    const successes: number[] = [];
    const client = taskClient(db);
    const t = defineTask<{ failFirst: boolean }>({
      name: 'w_tx',
      backoff: { kind: 'fixed', delayMs: 0 },
      handler: async ({ failFirst }, ctx) => {
        // One of pgferry's transactions here; examples/tasks-complete-tx.ts passes a pg client.
        await client.transaction(async (tx) => {
          await tx.query('INSERT INTO ledger VALUES ($1, $2)', [ctx.job.id, ctx.job.attempt]);
          ctx.progress('half'); // written at once, from the pool
          ctx.progress('all'); // throttled: goes into tx with the completion
          await ctx.complete(tx, { result: { attempt: ctx.job.attempt } });
          if (failFirst && ctx.job.attempt === 1) throw new Error('after complete, before commit');
        });
        return 'ignored: the result given to complete() is the stored one';
      },
    });
    const w = worker(db, { tasks: [t] });
    w.on('job:success', (job) => successes.push(job.id));
    await w.start();
    const ok = await client.enqueue(t, { failFirst: false });
    const flaky = await client.enqueue(t, { failFirst: true });
    expect(await client.waitForResult(t, ok.id, { timeoutMs: 15_000 })).toEqual({ attempt: 1 });
    expect(await client.waitForResult(t, flaky.id, { timeoutMs: 15_000 })).toEqual({ attempt: 2 });
    expect((await client.getJob(t, ok.id))!.progress).toBe('all');
    const rows = await db.sql(`SELECT job, attempt FROM ledger ORDER BY job, attempt`);
    expect(rows.map((r) => [Number(r.job), r.attempt])).toEqual([
      [ok.id, 1],
      [flaky.id, 2],
    ]);
    expect((await client.history(t, flaky.id))!.map((a) => a.outcome)).toEqual([
      'retry',
      'completed',
    ]);
    expect(successes.sort()).toEqual([ok.id, flaky.id].sort());
    await w.stop();
  });

  it('throws JobNotHeldError when the job is no longer the attempt’s (cancelled meanwhile)', async () => {
    let seen: unknown;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const client = taskClient(db);
    const t = defineTask<{ n: number }>({
      name: 'w_tx_lost',
      handler: async (_in, ctx) => {
        started();
        await sleep(300);
        const c = await db.pool.connect();
        try {
          await c.query('BEGIN');
          await ctx.complete(c).catch((e: unknown) => (seen = e));
          await c.query('ROLLBACK');
        } finally {
          c.release();
        }
      },
    });
    const w = worker(db, { tasks: [t], listen: false });
    await w.start();
    const job = await client.enqueue(t, { n: 1 });
    await running;
    await client.cancel(t, job.id); // no LISTEN: the handler is not aborted
    await sleep(500);
    expect(seen).toBeInstanceOf(JobNotHeldError);
    expect((await client.result(t, job.id)).state).toBe('cancelled');
    await w.stop();
  });
});

describe('tasks worker: flows and history', () => {
  it("runs the parent after its children with their results; 'fail' dead-letters it when a child dies", async () => {
    const kid = defineTask<{ n: number }>({
      name: 'w_kid',
      maxRetries: 0,
      handler: ({ n }) => {
        if (n < 0) throw new RangeError('negative');
        return n * 10;
      },
    });
    const seen: unknown[] = [];
    const boss = defineTask<{ name: string }>({
      name: 'w_boss',
      handler: (_in, ctx) => {
        seen.push(ctx.childResults.map((c) => [c.state, c.result]));
        return ctx.childResults.length;
      },
    });
    const client = taskClient(db);
    const w = worker(db, { tasks: [kid, boss], concurrency: 4 });
    await w.start();
    const good = await client.enqueueFlow({
      parent: { task: boss, input: { name: 'good' } },
      children: [1, 2, 3].map((n) => ({ task: kid, input: { n } })),
    });
    expect(await client.waitForResult(boss, good.parent.id, { timeoutMs: 15_000 })).toBe(3);
    expect(seen).toEqual([
      [
        ['completed', 10],
        ['completed', 20],
        ['completed', 30],
      ],
    ]);
    const bad = await client.enqueueFlow({
      parent: { task: boss, input: { name: 'bad' } },
      children: [1, -1].map((n) => ({ task: kid, input: { n } })),
    });
    const err = await client
      .waitForResult(boss, bad.parent.id, { timeoutMs: 15_000 })
      .catch((e: unknown) => e);
    expect((err as JobFailedError).jobError).toMatchObject({
      class: 'ChildJobFailedError',
      child: { state: 'dead', error: { class: 'RangeError', message: 'negative' } },
    });
    const cont = await client.enqueueFlow({
      parent: { task: boss, input: { name: 'cont' } },
      children: [-1, 4].map((n) => ({ task: kid, input: { n } })),
      onChildFailure: 'continue',
    });
    expect(await client.waitForResult(boss, cont.parent.id, { timeoutMs: 15_000 })).toBe(2);
    expect(seen[1]).toEqual([
      ['dead', undefined],
      ['completed', 40],
    ]);
    await w.stop();
  });

  it('records every failed attempt with its error stack and timings', async () => {
    const t = defineTask<{ n: number }>({
      name: 'w_hist',
      backoff: { kind: 'fixed', delayMs: 0 },
      handler: (_in, ctx) => {
        if (ctx.job.attempt < 3) throw new TypeError(`attempt ${ctx.job.attempt} failed`);
      },
    });
    const client = taskClient(db);
    const w = worker(db, { tasks: [t] });
    await w.start();
    const job = await client.enqueue(t, { n: 1 });
    await client.waitForResult(t, job.id, { timeoutMs: 15_000 });
    const h = (await client.history(t, job.id))!;
    expect(h.map((a) => [a.attempt, a.outcome, a.error?.message])).toEqual([
      [1, 'retry', 'attempt 1 failed'],
      [2, 'retry', 'attempt 2 failed'],
      [3, 'completed', undefined],
    ]);
    expect(h[0]!.error!.stack).toMatch(/TypeError: attempt 1 failed\n\s+at /);
    for (const a of h)
      expect(a.finishedAt!.getTime()).toBeGreaterThanOrEqual(a.startedAt!.getTime());
    await w.stop();
  });
});

describe('tasks worker: result retention', () => {
  it("the pruner chore deletes results after resultRetentionMs (default 7 days), not with the job's archive", async () => {
    const t = defineTask<{ n: number }>({ name: 'w_keep', handler: ({ n }) => n });
    const client = taskClient(db);
    const jobs = await client.enqueueBatch(
      t,
      [1, 2, 3].map((n) => ({ input: { n } })),
    );
    const flow = await client.enqueueFlow({
      parent: { task: t, input: { n: 4 } },
      children: [{ task: t, input: { n: 5 } }],
    });
    expect(await worker(db, { tasks: [t] }).runUntilIdle()).toMatchObject({ succeeded: 5 });
    const S = db.queueSchema;
    await db.sql(`UPDATE ${S}.a_w_keep SET archived_at = now() - interval '2 days'`);
    await db.sql(
      `UPDATE pgferry_tasks.job_results SET finished_at = now() - interval '8 days'
        WHERE queue_name = 'w_keep' AND msg_id = ANY($1)`,
      [[jobs[0]!.id, jobs[1]!.id]],
    );
    await db.sql(`UPDATE pgferry_tasks.flows SET created_at = now() - interval '8 days'`);
    const pruner = new Pruner(client, [t], { retentionMs: 86_400_000 }, (e) => {
      throw e;
    });
    expect(await pruner.once()).toBe(5); // the archive: every job
    expect(await client.getJob(t, jobs[2]!.id)).toBeNull();
    expect(await client.waitForResult(t, jobs[2]!.id)).toBe(3); // 7 days not over
    expect((await client.result(t, jobs[0]!.id)).state).toBe('unknown');
    expect((await client.result(t, jobs[1]!.id)).state).toBe('unknown');
    expect(await client.childResults(t, flow.parent.id)).toEqual([]); // its bookkeeping went too
  });
});

describe('pgferry/testing runTask: the database features inline', () => {
  it('hands progress to onProgress, childResults through, and checks ctx.complete’s arguments', async () => {
    const seen: unknown[] = [];
    const t = defineTask<{ n: number }>({
      name: 'inline_feat',
      handler: async ({ n }, ctx) => {
        ctx.progress(n);
        await ctx.complete({ query: async () => ({ rows: [] }) }, { result: 1 });
        await expect(ctx.complete(null as never)).rejects.toBeInstanceOf(TaskConfigError);
        return ctx.childResults.map((c) => c.result);
      },
    });
    const out = await runTask(
      t,
      { n: 7 },
      {
        onProgress: (v) => seen.push(v),
        childResults: [{ task: 'x', id: 1, state: 'completed', result: 'r', error: null }],
      },
    );
    expect(out).toEqual(['r']);
    expect(seen).toEqual([7]);
  });
});
