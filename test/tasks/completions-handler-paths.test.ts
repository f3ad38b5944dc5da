// A handler that returns at once (no promise) is classified without a
// promise or a timer; one that returns a promise races its abort. Both ways
// must end the same: stored results, retries of thrown errors, dead letters
// of results that cannot be stored, and `ctx.signal` usable in either.
import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import type { JobInfo } from '../../src/tasks/types.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, worker } from './helpers.js';

const db = useTestDatabase();

describe('tasks: synchronous and asynchronous handlers end the same way', () => {
  for (const kind of ['sync', 'async'] as const) {
    it(`${kind}: results, thrown errors, unstorable results, ctx.signal`, async () => {
      const wrap =
        <T>(f: () => T) =>
        (): T | Promise<T> =>
          kind === 'sync' ? f() : Promise.resolve().then(f);
      const attempts = new Map<number, number>();
      const signals: boolean[] = [];
      const t = defineTask<{ i: number }>({
        name: `paths_${kind}`,
        maxRetries: 1,
        backoff: { kind: 'fixed', delayMs: 10 },
        handler: ({ i }, ctx) => {
          const n = (attempts.get(i) ?? 0) + 1;
          attempts.set(i, n);
          signals.push(ctx.signal.aborted);
          return wrap(() => {
            if (i === 1 && n === 1) throw new Error('first attempt fails');
            if (i === 2) return 10n; // not JSON: dead at once
            return { i, n };
          })();
        },
      });
      const client = taskClient(db);
      const [a, b, c] = await client.enqueueBatch(t, [
        { input: { i: 0 } },
        { input: { i: 1 } },
        { input: { i: 2 } },
      ]);
      const w = worker(db, { tasks: [t] });
      const ok: number[] = [];
      const dead: number[] = [];
      const retried: number[] = [];
      w.on('job:success', (job: JobInfo) => ok.push(job.id));
      w.on('job:dead', (job: JobInfo) => dead.push(job.id));
      w.on('job:retry', (job: JobInfo) => retried.push(job.id));
      await w.start();
      await eventually(() => ok.length === 2 && dead.length === 1);
      await w.stop();
      expect(ok.sort()).toEqual([a!.id, b!.id].sort());
      expect(retried).toEqual([b!.id]);
      expect(dead).toEqual([c!.id]);
      expect(signals.every((s) => s === false)).toBe(true);
      expect((await client.result(t, a!.id)).result).toEqual({ i: 0, n: 1 });
      expect((await client.result(t, b!.id)).result).toEqual({ i: 1, n: 2 });
    });
  }

  it('a timed-out asynchronous handler is aborted and retried', async () => {
    const seen: number[] = [];
    const t = defineTask<{ i: number }>({
      name: 'paths_timeout',
      timeoutMs: 100,
      maxRetries: 1,
      backoff: { kind: 'fixed', delayMs: 10 },
      handler: async (_input, ctx) => {
        seen.push(ctx.job.attempt);
        if (ctx.job.attempt === 1)
          await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r()));
      },
    });
    const client = taskClient(db);
    const job = await client.enqueue(t, { i: 0 });
    const w = worker(db, { tasks: [t], leaseMarginMs: 100 });
    const ok: number[] = [];
    w.on('job:success', (j: JobInfo) => ok.push(j.id));
    await w.start();
    await eventually(() => ok.includes(job.id), 10_000);
    await w.stop();
    expect(seen).toEqual([1, 2]);
  });
});
