import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { TaskConfigError } from '../../src/tasks/errors.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, worker } from './helpers.js';

const db = useTestDatabase();

describe('fetch_after: fetching past the last full batch', () => {
  it('leases jobs after the given id first, then tops the batch up from the whole queue', async () => {
    const t = defineTask<{ i: number }>({ name: 'fetch_after_sql', handler: () => undefined });
    const client = taskClient(db);
    const ids = (
      await client.enqueueBatch(
        t,
        Array.from({ length: 10 }, (_, i) => ({ input: { i } })),
      )
    ).map((j) => j.id);
    const s = client.statements;
    const got = async (after: number, qty: number): Promise<number[]> =>
      (await s.fetchAfter(client.driver, t.name, qty, 60_000, after)).map((r) => Number(r.msg_id));
    // After the 3rd job: the 4th to the 7th, in order, leased (read_ct 1).
    expect((await got(ids[2]!, 4)).sort((a, b) => a - b)).toEqual(ids.slice(3, 7));
    // After the 8th: the 9th and 10th, then the rest from the whole queue
    // (the 1st to the 3rd; the 4th to the 7th are leased).
    expect((await got(ids[7]!, 5)).sort((a, b) => a - b)).toEqual([
      ...ids.slice(0, 3),
      ...ids.slice(8),
    ]);
    const leased = await db.sql(
      `SELECT count(*)::int AS n FROM ${db.queueSchema}.q_fetch_after_sql WHERE read_ct = 1`,
    );
    expect(leased[0]!.n).toBe(9); // the 8th was never asked for
    await expect(
      s.call(client.driver, 'fetch_after', [
        [t.name, 'text'],
        [1, 'integer'],
        [1000, 'integer'],
        [null, 'bigint'],
      ]),
    ).rejects.toBeInstanceOf(TaskConfigError);
  });

  it('runs a job retried during a backlog (below the point the fetches start from)', async () => {
    const runs = new Map<number, number>();
    const t = defineTask<{ i: number }>({
      name: 'fetch_after_retry',
      maxRetries: 1,
      backoff: { kind: 'fixed', delayMs: 50 },
      handler: ({ i }) => {
        runs.set(i, (runs.get(i) ?? 0) + 1);
        if (i === 3 && runs.get(i) === 1) throw new Error('first attempt fails');
      },
    });
    const client = taskClient(db);
    for (let i = 0; i < 6000; i += 1000)
      await client.enqueueBatch(
        t,
        Array.from({ length: 1000 }, (_, k) => ({ input: { i: i + k } })),
      );
    const w = worker(db, { tasks: [t] });
    await w.start();
    await eventually(
      async () =>
        (await db.sql(`SELECT count(*)::int AS n FROM ${db.queueSchema}.a_fetch_after_retry`))[0]!
          .n === 6000,
      60_000,
    );
    await w.stop();
    expect(runs.size).toBe(6000);
    expect(runs.get(3)).toBe(2);
    expect([...runs].filter(([i, n]) => i !== 3 && n !== 1)).toEqual([]);
  });
});
