import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { sleep, taskClient, worker } from './helpers.js';

const db = useTestDatabase();

describe('tasks: ordering', () => {
  it('grouped: one job per group at a time, in FIFO order, across 3 workers', async () => {
    const log: { g: string; i: number; phase: 'start' | 'end' }[] = [];
    const t = defineTask<{ g: string; i: number }>({
      name: 'grouped_fifo',
      grouped: true,
      handler: async ({ g, i }) => {
        log.push({ g, i, phase: 'start' });
        await sleep(5 + ((i * 7) % 11));
        log.push({ g, i, phase: 'end' });
      },
    });
    const client = taskClient(db);
    await client.ensure(t);
    const jobs = [];
    for (let i = 0; i < 12; i++)
      for (const g of ['a', 'b', 'c']) jobs.push({ input: { g, i }, options: { group: g } });
    await client.enqueueBatch(t, jobs);
    const ws = [0, 1, 2].map(() => worker(db, { tasks: [t], concurrency: 4 }));
    await Promise.all(ws.map((w) => w.start()));
    await eventually(() => log.filter((l) => l.phase === 'end').length === 36, 15_000);
    for (const g of ['a', 'b', 'c']) {
      const mine = log.filter((l) => l.g === g);
      // start/end strictly alternate (never two at once) and i is increasing.
      expect(mine.map((l) => l.phase)).toEqual(
        Array.from({ length: 24 }, (_, k) => (k % 2 ? 'end' : 'start')),
      );
      expect(mine.filter((l) => l.phase === 'start').map((l) => l.i)).toEqual([
        ...Array(12).keys(),
      ]);
    }
    // Groups did run in parallel with each other.
    let open = 0;
    let maxOpen = 0;
    for (const l of log) {
      open += l.phase === 'start' ? 1 : -1;
      maxOpen = Math.max(maxOpen, open);
    }
    expect(maxOpen).toBeGreaterThan(1);
    await Promise.all(ws.map((w) => w.stop()));
  });

  it('lifo: newest first', async () => {
    const order: number[] = [];
    const t = defineTask<{ i: number }>({
      name: 'lifo_jobs',
      lifo: true,
      handler: ({ i }) => void order.push(i),
    });
    const client = taskClient(db);
    await client.enqueueBatch(
      t,
      Array.from({ length: 10 }, (_, i) => ({ input: { i } })),
    );
    const w = worker(db, { tasks: [t], concurrency: 1, batchSize: 3 });
    await w.runUntilIdle();
    expect(order).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  });

  it('grouped lifo: newest first inside each group, one at a time', async () => {
    const order: string[] = [];
    const t = defineTask<{ s: string }>({
      name: 'glifo',
      lifo: true,
      grouped: true,
      handler: ({ s }) => void order.push(s),
    });
    const client = taskClient(db);
    for (const s of ['a1', 'b1', 'a2', 'b2', 'a3'])
      await client.enqueue(t, { s }, { group: s[0]! });
    const w = worker(db, { tasks: [t], concurrency: 1 });
    await w.runUntilIdle();
    expect(order.filter((s) => s.startsWith('a'))).toEqual(['a3', 'a2', 'a1']);
    expect(order.filter((s) => s.startsWith('b'))).toEqual(['b2', 'b1']);
  });

  it('priority: higher first, FIFO among equals', async () => {
    const order: string[] = [];
    const t = defineTask<{ s: string }>({
      name: 'prio',
      priority: 0,
      handler: ({ s }) => void order.push(s),
    });
    const client = taskClient(db);
    await client.enqueue(t, { s: 'low1' }, { priority: -1 });
    await client.enqueue(t, { s: 'mid1' });
    await client.enqueue(t, { s: 'high1' }, { priority: 10 });
    await client.enqueue(t, { s: 'mid2' });
    await client.enqueue(t, { s: 'high2' }, { priority: 10 });
    const w = worker(db, { tasks: [t], concurrency: 1, batchSize: 2 });
    await w.runUntilIdle();
    expect(order).toEqual(['high1', 'high2', 'mid1', 'mid2', 'low1']);
  });
});
