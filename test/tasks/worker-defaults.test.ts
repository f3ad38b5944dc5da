import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { ADAPTIVE_MAX_BATCH } from '../../src/tasks/worker/options.js';
import type { Worker } from '../../src/tasks/worker.js';
import type { AnyTask } from '../../src/tasks/types.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { sleep, taskClient, worker } from './helpers.js';

const db = useTestDatabase();

const archived = async (name: string): Promise<number> =>
  (await db.sql(`SELECT count(*)::int AS n FROM ${db.queueSchema}.a_${name}`))[0]!.n as number;

/** Enqueues jobs {i: 0..n-1} in batches of 1,000. */
async function enqueueN(t: AnyTask, n: number): Promise<void> {
  const client = taskClient(db);
  for (let i = 0; i < n; i += 1000)
    await client.enqueueBatch(
      t,
      Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ input: { i: i + k } })),
    );
}

/** Starts the worker, waits until `n` jobs of its task are archived, stops it. */
async function runUntilArchived(w: Worker, name: string, n: number): Promise<void> {
  await w.start();
  await eventually(async () => (await archived(name)) === n, 60_000);
  await w.stop();
}

describe('Worker defaults: adaptive fetching, durable completions', () => {
  it('grows the fetch size under a backlog of fast jobs and shrinks it back when the queue runs dry', async () => {
    const sizes: number[] = [];
    const t = defineTask<{ i: number }>({
      name: 'adaptive_fast',
      handler: () => void sizes.push(w.stats().tasks.adaptive_fast!.batchSize),
    });
    await enqueueN(t, 4000);
    const w = worker(db, { tasks: [t], pollIntervalMs: 50 }); // every other option default
    expect(w.stats().tasks.adaptive_fast!.batchSize).toBe(10); // starts at concurrency
    await w.start();
    await eventually(async () => (await archived('adaptive_fast')) === 4000, 60_000);
    // Handlers waited for jobs while fetches came back full: it grew, several times,
    // and more than two-fold at least once (four-fold, or four-fold capped at
    // the maximum, when every slot sat idle although jobs had started during
    // the fetch: no-op handlers outrun any fetch; doubling alone never does).
    expect(Math.max(...sizes)).toBeGreaterThanOrEqual(160);
    const steps = sizes.filter((x, i) => i === 0 || x !== sizes[i - 1]);
    expect(steps.some((x, i) => i > 0 && x > steps[i - 1]! * 2)).toBe(true);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(ADAPTIVE_MAX_BATCH);
    // Empty fetches halve it back to the minimum.
    await eventually(() => w.stats().tasks.adaptive_fast!.batchSize === 10, 20_000);
    const s = w.stats();
    expect(s.running).toBe(0);
    expect(s.tasks.adaptive_fast).toMatchObject({ buffered: 0, completing: 0 });
    await w.stop();
    expect(sizes).toHaveLength(4000);
  });

  it('keeps the fetch size small while every handler slot is busy (slow handlers do not hoard jobs)', async () => {
    const sizes: number[] = [];
    const t = defineTask<{ i: number }>({
      name: 'adaptive_slow',
      handler: async () => {
        sizes.push(w.stats().tasks.adaptive_slow!.batchSize);
        await sleep(150);
      },
    });
    await enqueueN(t, 16);
    const w = worker(db, { tasks: [t], concurrency: 2 });
    await runUntilArchived(w, 'adaptive_slow', 16);
    // It may double once or twice at the start (every slot free, nothing
    // buffered), never towards the maximum.
    expect(sizes).toHaveLength(16);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(8);
  });

  it('keeps an explicit batchSize fixed', async () => {
    const sizes = new Set<number>();
    const t = defineTask<{ i: number }>({
      name: 'fixed_batch',
      handler: () => void sizes.add(w.stats().tasks.fixed_batch!.batchSize),
    });
    await enqueueN(t, 500);
    const w = worker(db, { tasks: [t], batchSize: 7 });
    await runUntilArchived(w, 'fixed_batch', 500);
    expect([...sizes]).toEqual([7]);
  });

  it('commits completions durably by default (synchronous_commit on); asyncCommit: true turns it off for them', async () => {
    // A trigger on the archive records the setting in force in the
    // completing transaction (complete() sets it for that transaction only).
    const seen = async (name: string): Promise<string[]> =>
      (
        await db.sql(
          `SELECT DISTINCT setting FROM public.commit_settings WHERE task = $1 ORDER BY 1`,
          [name],
        )
      ).map((r) => r.setting as string);
    // The test server may run with synchronous_commit off (the embedded one
    // does, for speed): the worker's sessions get on from the database.
    await db.sql(
      `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = on', current_database()); END $$`,
    );
    await db.sql(`CREATE TABLE public.commit_settings (task text, setting text)`);
    await db.sql(`CREATE FUNCTION public.record_commit_setting() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO public.commit_settings VALUES (TG_ARGV[0], current_setting('synchronous_commit'));
        RETURN NULL;
      END $$`);
    const client = taskClient(db);
    for (const [name, options] of [
      ['durable_default', {}],
      ['async_opt_in', { asyncCommit: true }],
    ] as const) {
      const t = defineTask<{ i: number }>({ name, handler: () => undefined });
      await client.ensure(t);
      await db.sql(
        `CREATE TRIGGER rec AFTER INSERT ON ${db.queueSchema}.a_${name}
           FOR EACH ROW EXECUTE FUNCTION public.record_commit_setting('${name}')`,
      );
      await enqueueN(t, 20);
      await runUntilArchived(worker(db, { tasks: [t], ...options }), name, 20);
    }
    expect(await seen('durable_default')).toEqual(['on']);
    expect(await seen('async_opt_in')).toEqual(['off']);
  });
  it('loses no wake-up when notifications arrive while a fetch is busy going to sleep', async () => {
    // Jobs enqueued one by one, a few ms apart: notifications keep arriving
    // while the lane is between its empty fetch, idle() and its last look.
    // With a 60 s poll interval a lost wake-up would leave a job waiting
    // for a minute (the test's deadline is 30 s).
    const done = new Set<number>();
    const t = defineTask<{ i: number }>({
      name: 'wake_race',
      handler: ({ i }) => void done.add(i),
    });
    const client = taskClient(db);
    await client.ensure(t);
    const w = worker(db, { tasks: [t], pollIntervalMs: 60_000 });
    await w.start();
    // 4 producers, 100 jobs each.
    await Promise.all(
      [0, 1, 2, 3].map(async (p) => {
        for (let i = p; i < 400; i += 4) {
          await client.enqueue(t, { i });
          await sleep(2 + (i % 5));
        }
      }),
    );
    await eventually(() => done.size === 400, 30_000);
    await w.stop();
    expect(done.size).toBe(400);
  }, 60_000);
});
