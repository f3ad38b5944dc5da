import { describe, expect, it, vi } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { FIRST_ROUND_DELAY_MS, Pruner } from '../../src/tasks/pruner.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, worker } from './helpers.js';

const db = useTestDatabase();

describe('tasks: pruning', () => {
  it('deletes only archived jobs older than the retention, in batches, from one elected worker', async () => {
    const t = defineTask<{ i: number }>({
      name: 'prunable',
      maxRetries: 0,
      handler: ({ i }) => {
        if (i === 0) throw new Error('dies');
      },
    });
    const client = taskClient(db);
    await client.enqueueBatch(
      t,
      Array.from({ length: 25 }, (_, i) => ({ input: { i } })),
    );
    await worker(db, { tasks: [t] }).runUntilIdle();
    const S = db.queueSchema;
    // 20 of the finished jobs (and the dead letter's archive) are old, 4 are recent.
    await db.sql(
      `UPDATE ${S}.a_prunable SET archived_at = now() - interval '3 days' WHERE msg_id <= 20`,
    );
    // reschedule: the deprecated alias of requeue, kept for one release.
    await client.deadLetters(t).reschedule({ all: true });
    await db.sql(`UPDATE ${S}.a_prunable_dlq SET archived_at = now() - interval '3 days'`);
    const live = await db.sql(`SELECT count(*)::int AS n FROM ${S}.q_prunable`);
    expect(live[0]!.n).toBe(1); // the rescheduled job is untouched
    const pruners = [0, 1, 2].map(
      () =>
        new Pruner(client, [t], { batchSize: 7, retentionMs: 86_400_000 }, (e) => {
          throw e;
        }),
    );
    const results = await Promise.all(pruners.map((p) => p.once()));
    expect(results.filter((r) => r !== null)).toEqual([21]); // one winner: 20 + 1 dead-letter archive row
    const left = await db.sql(`SELECT msg_id FROM ${S}.a_prunable ORDER BY msg_id`);
    expect(left.map((r) => Number(r.msg_id))).toEqual([21, 22, 23, 24, 25]);
    expect(await db.sql(`SELECT 1 FROM ${S}.a_prunable_dlq`)).toHaveLength(0);
    expect((await db.sql(`SELECT count(*)::int AS n FROM ${S}.q_prunable`))[0]!.n).toBe(1);
  });

  it('a started pruner runs its first round after FIRST_ROUND_DELAY_MS, then every interval', async () => {
    const t = defineTask({ name: 'prune_later', handler: () => undefined });
    const client = taskClient(db);
    await client.ensure(t);
    const chore = async (): Promise<number> =>
      (
        await db.sql(
          `SELECT count(*)::int AS n FROM pgferry_tasks.chores WHERE name = 'prune:prune_later'`,
        )
      )[0]!.n as number;
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval'] });
    const pruner = new Pruner(client, [t], {}, (e) => {
      throw e;
    });
    try {
      pruner.start();
      vi.advanceTimersByTime(FIRST_ROUND_DELAY_MS - 1);
      await new Promise((r) => setImmediate(r));
      expect(await chore()).toBe(0); // nothing claimed yet: the worker's start is left to its leases
      vi.advanceTimersByTime(1);
    } finally {
      vi.useRealTimers();
    }
    await eventually(async () => (await chore()) === 1);
    await pruner.stop();
  });
});
