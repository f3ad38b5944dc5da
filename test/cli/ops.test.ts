import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { defineTask } from '../../src/tasks/define.js';
import { taskClient, worker } from '../tasks/helpers.js';

const db = useTestDatabase();

/** Runs `pgferry …` in-process; returns the exit code and what it printed. */
async function run(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const push = (...x: unknown[]) => void lines.push(x.join(' '));
  const log = vi.spyOn(console, 'log').mockImplementation(push);
  const err = vi.spyOn(console, 'error').mockImplementation(push);
  try {
    const code = await main([...args, '--url', db.url, '--queue-schema', db.queueSchema]);
    return { code, out: lines.join('\n') };
  } finally {
    log.mockRestore();
    err.mockRestore();
  }
}
const json = async <T>(args: string[]): Promise<T> => {
  const r = await run([...args, '--json']);
  expect(r.code, r.out).toBe(0);
  return JSON.parse(r.out) as T;
};

afterEach(() => vi.restoreAllMocks());

const mail = defineTask({ name: 'cli_mail', handler: async () => undefined });
const failing = defineTask({
  name: 'cli_fail',
  maxRetries: 0,
  handler: async () => {
    throw new Error('nope');
  },
});

describe('pgferry queues', () => {
  it('lists queues with depth and age, and browses messages by payload field and header', async () => {
    const q = db.queueClient();
    await q.createQueue('cli_q');
    await q.send('cli_q', { user: { id: 7 }, kind: 'a' }, { headers: { tenant: 'x' } });
    await q.send('cli_q', { user: { id: 8 }, kind: 'a' }, { headers: { tenant: 'y' } });
    await q.send('cli_q', { user: { id: 7 }, kind: 'b' });
    const text = await run(['queues']);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^QUEUE\s+DEPTH\s+OLDEST/m);
    expect(text.out).toMatch(/^cli_q\s+3\s+\d+s\s+0\s+0/m);
    const list = await json<{ queue: string; depth: number }[]>(['queues', 'list']);
    expect(list.find((x) => x.queue === 'cli_q')).toMatchObject({ depth: 3, depthExact: true });
    const byField = await json<{ msgId: number }[]>([
      'queues',
      'messages',
      'cli_q',
      '--where',
      'user.id=7',
    ]);
    expect(byField.map((m) => m.msgId)).toEqual([1, 3]);
    const both = await json<{ msgId: number }[]>([
      'queues',
      'messages',
      'cli_q',
      '--where',
      'kind=a',
      '--header',
      'tenant=y',
    ]);
    expect(both.map((m) => m.msgId)).toEqual([2]);
    // Browsing reads nothing: read counts stay 0.
    const [m] = await db.sql<{ n: number }>(
      `SELECT max(read_ct) AS n FROM ${db.queueSchema}.q_cli_q`,
    );
    expect(m!.n).toBe(0);
  });

  it('exits 2 on bad usage, 1 for a missing queue, 3 when the database is unreachable', async () => {
    expect((await run(['queues', 'bogus'])).code).toBe(2);
    expect((await run(['queues', 'messages', 'cli_q', '--where', 'novalue'])).code).toBe(2);
    expect((await run(['queues', 'messages', 'no_such_queue'])).code).toBe(1);
    const lines: string[] = [];
    const err = vi
      .spyOn(console, 'error')
      .mockImplementation((...x) => void lines.push(x.join(' ')));
    const code = await main(['queues', '--url', 'postgres://postgres@127.0.0.1:1/nothing']);
    err.mockRestore();
    expect(code).toBe(3);
  });
});

describe('pgferry jobs', () => {
  it('searches by state and payload field, shows one, retries, cancels and deletes by filter', async () => {
    const client = taskClient(db);
    const now = await client.enqueue(mail, { to: 'a@x', plan: 'pro' });
    const later = await client.enqueue(mail, { to: 'b@x', plan: 'free' }, { delayMs: 3_600_000 });
    const later2 = await client.enqueue(mail, { to: 'c@x', plan: 'pro' }, { delayMs: 3_600_000 });

    const scheduled = await json<{ msgId: number; state: string }[]>([
      'jobs',
      'list',
      'cli_mail',
      '--state',
      'scheduled',
    ]);
    expect(scheduled.map((j) => j.msgId)).toEqual([later.id, later2.id]);
    const pro = await json<{ msgId: number }[]>([
      'jobs',
      'list',
      'cli_mail',
      '--where',
      'plan=pro',
    ]);
    expect(pro.map((j) => j.msgId)).toEqual([now.id, later2.id]);
    const shown = await run(['jobs', 'show', 'cli_mail', String(later.id)]);
    expect(shown.code).toBe(0);
    expect(shown.out).toContain(`job ${later.id} of task cli_mail: scheduled`);
    expect((await run(['jobs', 'show', 'cli_mail', '999999'])).code).toBe(1);

    // retry a scheduled job by filter: it becomes runnable now.
    const r = await json<{ id: number; outcome: string }[]>([
      'jobs',
      'retry',
      'cli_mail',
      '--state',
      'scheduled',
      '--where',
      'plan=free',
    ]);
    expect(r).toEqual([{ id: later.id, outcome: 'done', detail: 'runs now' }]);
    expect((await client.getJob('cli_mail', later.id))!.state).toBe('queued');

    // cancel by id; delete by filter.
    const c = await run(['jobs', 'cancel', 'cli_mail', String(later2.id)]);
    expect(c.code).toBe(0);
    expect((await client.getJob('cli_mail', later2.id))!.state).toBe('cancelled');
    const d = await json<{ id: number; outcome: string }[]>([
      'jobs',
      'delete',
      'cli_mail',
      '--where',
      'to=a@x',
    ]);
    expect(d).toEqual([{ id: now.id, outcome: 'done', detail: 'deleted' }]);
    expect(await client.getJob('cli_mail', now.id)).toBeNull();

    // Nothing left to delete among cancelled jobs: every selected job skipped → exit 1.
    const none = await run(['jobs', 'delete', 'cli_mail', '--state', 'cancelled']);
    expect(none.code).toBe(1);
    expect(none.out).toContain('skipped');
    // No ids and no filter, bad state, bad id: usage errors.
    expect((await run(['jobs', 'retry', 'cli_mail'])).code).toBe(2);
    expect((await run(['jobs', 'list', 'cli_mail', '--state', 'weird'])).code).toBe(2);
    expect((await run(['jobs', 'cancel', 'cli_mail', 'x'])).code).toBe(2);
  });

  it('retries a dead job by rescheduling its dead letter, like pgferry dlq', async () => {
    const client = taskClient(db);
    const job = await client.enqueue(failing, { n: 1 });
    const w = worker(db, { tasks: [failing] });
    await w.start();
    await eventually(
      async () => (await client.getJob('cli_fail', job.id))?.state === 'dead',
      20_000,
    );
    await w.stop();
    const dead = await json<{ msgId: number }[]>(['jobs', 'list', 'cli_fail', '--state', 'dead']);
    expect(dead.map((j) => j.msgId)).toEqual([job.id]);
    expect((await json<unknown[]>(['dlq', 'list', 'cli_fail'])).length).toBe(1);
    const r = await json<{ id: number; outcome: string; detail: string }[]>([
      'jobs',
      'retry',
      'cli_fail',
      String(job.id),
    ]);
    expect(r[0]).toMatchObject({ id: job.id, outcome: 'done' });
    const newId = Number(/new job (\d+)/.exec(r[0]!.detail)![1]);
    expect((await client.getJob('cli_fail', newId))!.state).toBe('queued');
    expect((await json<unknown[]>(['dlq', 'list', 'cli_fail'])).length).toBe(0);
  });
});

describe('pgferry jobs show: attempt history (taskfeat-b)', () => {
  it('prints the failed attempts with their errors', async () => {
    const flaky = defineTask({
      name: 'cli_flaky',
      maxRetries: 1,
      backoff: { kind: 'fixed', delayMs: 0 },
      handler: async () => {
        throw new RangeError('out of range');
      },
    });
    const client = taskClient(db);
    const job = await client.enqueue(flaky, {});
    await worker(db, { tasks: [flaky] }).runUntilIdle();
    const shown = await run(['jobs', 'show', 'cli_flaky', String(job.id)]);
    expect(shown.out).toMatch(/^attempt 1: +retry at \S+: RangeError: out of range$/m);
    expect(shown.out).toMatch(/^attempt 2: +dead at \S+: RangeError: out of range$/m);
  });
});

describe('pgferry jobs: flows (review17)', () => {
  it('does not run a held flow parent early, nor delete a child its parent waits for', async () => {
    const part = defineTask<{ n: number }>({ name: 'cli_part', handler: async () => undefined });
    const whole = defineTask<{ n: number }>({ name: 'cli_whole', handler: async () => undefined });
    const client = taskClient(db);
    const flow = await client.enqueueFlow({
      parent: { task: whole, input: { n: 0 } },
      children: [{ task: part, input: { n: 1 } }],
    });
    // Before: the parent became visible at once and ran before its child.
    const r = await run(['jobs', 'retry', 'cli_whole', '--state', 'scheduled', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toEqual([
      {
        id: flow.parent.id,
        outcome: 'skipped',
        detail: 'a flow parent runs when its children have finished',
      },
    ]);
    expect((await client.getJob(whole, flow.parent.id))!.state).toBe('scheduled');
    // Before: the child was deleted and the parent waited for it for ever.
    const d = await run(['jobs', 'delete', 'cli_part', String(flow.children[0]!.id)]);
    expect(d.code).toBe(1);
    expect((await client.getJob(part, flow.children[0]!.id))!.state).toBe('queued');
    // Cancelling it is counted: the 'fail' policy dead-letters the parent.
    expect((await run(['jobs', 'cancel', 'cli_part', String(flow.children[0]!.id)])).code).toBe(0);
    expect((await client.getJob(whole, flow.parent.id))!.state).toBe('dead');
  });
});

describe('pgferry streams', () => {
  it('lists streams and consumers with lag', async () => {
    await db.sql(`SELECT pgque.create_queue('cli_events')`);
    await db.sql(`SELECT pgque.subscribe('cli_events', 'cli_reader')`);
    await db.sql(`SELECT pgque.send('cli_events', '{"a":1}'::jsonb)`);
    await db.sql(`SELECT pgque.force_next_tick('cli_events'), pgque.ticker('cli_events')`);
    const s = await json<{
      streams: { queueName: string }[];
      consumers: { consumerName: string; pendingEvents: number }[];
    }>(['streams']);
    expect(s.streams.map((x) => x.queueName)).toContain('cli_events');
    const c = s.consumers.find((x) => x.consumerName === 'cli_reader')!;
    expect(c.pendingEvents).toBeGreaterThan(0);
    const text = await run(['streams']);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^cli_events\s+cli_reader\s+/m);
    expect((await run(['streams', 'extra'])).code).toBe(2);
  });
});
