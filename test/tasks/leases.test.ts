import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { sleep, taskClient, worker } from './helpers.js';

const db = useTestDatabase();

describe('tasks: leases of buffered jobs', () => {
  it('renews the leases of jobs waiting in a local buffer, so no other worker runs them meanwhile', async () => {
    const runs = new Map<number, number>();
    const t = defineTask<{ i: number }>({
      name: 'buffered',
      timeoutMs: 200, // lease = 200 + 100 ms margin; the 6th buffered job waits ~400 ms
      handler: async ({ i }) => {
        runs.set(i, (runs.get(i) ?? 0) + 1);
        await sleep(80);
      },
    });
    const client = taskClient(db);
    await client.enqueueBatch(
      t,
      Array.from({ length: 12 }, (_, i) => ({ input: { i } })),
    );
    const ws = [0, 1].map(() =>
      worker(db, {
        tasks: [t],
        concurrency: 1,
        batchSize: 6,
        leaseMarginMs: 100,
        pollIntervalMs: 50,
      }),
    );
    await Promise.all(ws.map((w) => w.start()));
    await eventually(
      async () =>
        (await db.sql(`SELECT count(*)::int AS n FROM ${db.queueSchema}.a_buffered`))[0]!.n === 12,
      15_000,
    );
    await Promise.all(ws.map((w) => w.stop()));
    expect(runs.size).toBe(12);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    const attempts = await db.sql(
      `SELECT max(read_ct)::int AS m FROM ${db.queueSchema}.a_buffered`,
    );
    expect(attempts[0]!.m).toBe(1);
  });
});
