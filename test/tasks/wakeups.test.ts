import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { sleep, taskClient, worker } from './helpers.js';
import { testClient } from '../support/connections.js';

const db = useTestDatabase();

describe('tasks: wake-ups', () => {
  it('inserts notify only after a worker said it sleeps, once, then stay quiet', async () => {
    const t = defineTask<{ i: number }>({ name: 'quiet', handler: () => undefined });
    const client = taskClient(db);
    await client.ensure(t);
    const listener = testClient({ connectionString: db.url });
    await listener.connect();
    db.track({ close: () => listener.end() });
    const got: string[] = [];
    listener.on('notification', (n) => got.push(n.payload ?? ''));
    await listener.query('LISTEN pgferry_tasks_wake');
    /** What arrived before a notification of our own (so nothing is still on its way). */
    const drainNotifications = async (): Promise<string[]> => {
      await db.sql(`SELECT pg_notify('pgferry_tasks_wake', 'marker')`);
      await eventually(() => got.at(-1) === 'marker');
      return got.splice(0).slice(0, -1);
    };
    for (let i = 0; i < 20; i++) await client.enqueue(t, { i });
    await client.enqueueBatch(t, [{ input: { i: 20 } }, { input: { i: 21 } }]);
    expect(await drainNotifications()).toEqual([]); // nobody is waiting: no NOTIFY at all
    await db.sql(`SELECT pgferry_tasks.idle('quiet')`); // a worker goes to sleep
    for (let i = 0; i < 10; i++) await client.enqueue(t, { i });
    expect(await drainNotifications()).toEqual(['quiet']); // one wake-up, then quiet again
  });

  it('a sleeping worker is woken by LISTEN long before its poll interval; without LISTEN it polls', async () => {
    const seen: string[] = [];
    const t = defineTask<{ s: string }>({ name: 'wakeme', handler: ({ s }) => void seen.push(s) });
    const client = taskClient(db);
    const listening = worker(db, { tasks: [t], pollIntervalMs: 60_000 });
    await listening.start();
    await client.enqueue(t, { s: 'first' });
    await eventually(() => seen.includes('first'), 5_000);
    const idle = async (): Promise<boolean> =>
      (await db.sql(`SELECT waiting FROM pgferry_tasks.queues WHERE queue_name = 'wakeme'`))[0]!
        .waiting === true;
    await eventually(idle); // asleep for up to a minute now
    const t0 = Date.now();
    await client.enqueue(t, { s: 'listen' });
    await eventually(() => seen.includes('listen'), 5_000);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await listening.stop();
    const polling = worker(db, { tasks: [t], listen: false, pollIntervalMs: 100 });
    await polling.start();
    await client.enqueue(t, { s: 'poll' });
    await eventually(() => seen.includes('poll'), 5_000);
    await polling.stop();
  });

  it('wakes for a delayed job when it becomes due, without a notification', async () => {
    const seen: number[] = [];
    const t = defineTask<{ i: number }>({
      name: 'due_later',
      handler: ({ i }) => void seen.push(Date.now() - i),
    });
    const client = taskClient(db);
    await client.enqueue(t, { i: Date.now() + 400 }, { delayMs: 400 });
    const w = worker(db, { tasks: [t], pollIntervalMs: 60_000, listen: false });
    const done = new Promise<void>((resolve) => w.once('job:success', () => resolve()));
    // The worker finds nothing runnable and sleeps (poll 60 s, no LISTEN):
    // only the timer set for the job's run time can wake it.
    await w.start();
    await done;
    expect(seen).toHaveLength(1);
    expect(Math.abs(seen[0]!)).toBeLessThan(1500);
    await w.stop();
  });

  it('after a short batch goes to sleep with idle() and one look, and still sees a job inserted meanwhile', async () => {
    const seen: number[] = [];
    const t = defineTask<{ i: number }>({
      name: 'short_sleep',
      handler: ({ i }) => void seen.push(i),
    });
    const client = taskClient(db);
    await client.ensure(t);
    const w = worker(db, { tasks: [t], pollIntervalMs: 60_000 });
    // Count the lane's statements (a real database; the calls are only counted).
    const calls: string[] = [];
    const st = w.client.statements;
    const fetchPlain = st.fetchPlain.bind(st);
    const idle = st.idle.bind(st);
    st.fetchPlain = async (...a) => {
      const r = await fetchPlain(...a);
      calls.push(`fetch:${r?.length ?? 'sql'}`);
      return r;
    };
    st.idle = async (...a) => {
      calls.push('idle');
      return idle(...a);
    };
    const asleep = async (): Promise<boolean> =>
      (
        await db.sql(`SELECT waiting FROM pgferry_tasks.queues WHERE queue_name = 'short_sleep'`)
      )[0]!.waiting === true;
    await w.start();
    await eventually(asleep);
    await sleep(100); // its last look (after idle()) has returned too
    calls.length = 0;
    await client.enqueue(t, { i: 1 });
    await eventually(() => seen.includes(1), 5_000);
    await eventually(asleep);
    await sleep(50);
    // The job's lease came back short: idle() and one look, no empty fetch before them.
    expect(calls).toEqual(['fetch:1', 'idle', 'fetch:0']);
    // A job inserted while the lane is between its lease and idle(): the look after idle() finds it.
    calls.length = 0;
    st.idle = async (...a) => {
      calls.push('idle');
      if (calls.filter((c) => c === 'idle').length === 1) await client.enqueue(t, { i: 3 });
      return idle(...a);
    };
    await client.enqueue(t, { i: 2 });
    await eventually(() => seen.includes(2) && seen.includes(3), 5_000);
    await w.stop();
    expect(seen.sort()).toEqual([1, 2, 3]);
  });
});
