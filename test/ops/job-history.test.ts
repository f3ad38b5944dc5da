// The dashboard's job page (attempts, progress, result, flow and dead-letter
// links) and bulk actions by filter, over HTTP, with reads on a read-only session.
import { describe, expect, it } from 'vitest';
import { execute } from '../../src/driver/types.js';
import { Ops } from '../../src/ops/ops.js';
import { startDashboard } from '../../src/ops/dashboard/server.js';
import { countBulk } from '../../src/ops/bulk-count.js';
import { defineTask } from '../../src/tasks/define.js';
import { TaskConfigError } from '../../src/tasks/errors.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, worker } from '../tasks/helpers.js';

const db = useTestDatabase();

/** Reads on a session that refuses writes: what a replica URL gives. */
const readOnlyUrl = () =>
  `${db.url}${db.url.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c default_transaction_read_only=on')}`;

const ops = () =>
  db.track(
    new Ops({
      connectionString: db.url,
      readConnectionString: readOnlyUrl(),
      schemas: { queue: db.queueSchema },
    }),
  );

const flaky = defineTask({
  name: 'h_flaky',
  maxRetries: 2,
  backoff: { kind: 'fixed', delayMs: 10 },
  handler: async (input: { n: number }, ctx) => {
    ctx.progress({ step: ctx.job.attempt });
    if (ctx.job.attempt === 1) {
      const e = new RangeError('first attempt fails');
      e.stack = `RangeError: first attempt fails\n    at step (app/flaky.ts:3:7)`;
      throw e;
    }
    return { doubled: input.n * 2 };
  },
});
const doomed = defineTask({
  name: 'h_doomed',
  maxRetries: 0,
  handler: async (): Promise<void> => {
    throw new Error('never works');
  },
});
const leaf = defineTask({ name: 'h_leaf', handler: async (i: { x: number }) => i.x });
const root = defineTask({ name: 'h_root', handler: async () => 'joined' });

const text = async (url: string) => {
  const r = await fetch(url);
  expect(r.status).toBe(200);
  return r.text();
};
const csrfOf = (html: string): string => /name="csrf" value="([0-9a-f]+)"/.exec(html)![1]!;

describe('job page', () => {
  it('shows attempts with the error stack, progress, result, flow and dead-letter links', async () => {
    const client = taskClient(db);
    const job = await client.enqueue(flaky, { n: 21 });
    const dead = await client.enqueue(doomed, {});
    const flow = await client.enqueueFlow({
      parent: { task: root, input: {} },
      children: [{ task: leaf, input: { x: 7 } }],
    });
    const w = worker(db, { tasks: [flaky, doomed, leaf, root] });
    await w.start();
    await eventually(
      async () => (await client.getJob(flaky, job.id))?.state === 'completed',
      20_000,
    );
    await eventually(async () => (await client.getJob(doomed, dead.id))?.state === 'dead', 20_000);
    await eventually(
      async () => (await client.getJob(root, flow.parent.id))?.state === 'completed',
      20_000,
    );
    await w.stop();
    const d = db.track(await startDashboard({ port: 0, ops: ops(), refreshMs: 0 }));

    const page = await text(`${d.url}tasks/h_flaky/jobs/${job.id}`);
    const attempts = /<table id="job-attempts"[\s\S]*?<\/table>/.exec(page)![0];
    expect(attempts).toMatch(/<td>1<\/td>\s*<td><span class="badge retry">retry<\/span>/);
    expect(attempts).toMatch(/<td>2<\/td>\s*<td><span class="badge completed">completed<\/span>/);
    expect(attempts).toContain('RangeError: first attempt fails');
    expect(attempts).toMatch(/<details id="stack-1">[\s\S]*at step \(app\/flaky.ts:3:7\)/);
    expect(attempts).toMatch(/\d+(\.\d+)? m?s</);
    expect(page).toContain('{&quot;step&quot;:2}'); // progress
    expect(/<pre id="job-result">([\s\S]*?)<\/pre>/.exec(page)![1]).toContain(
      '&quot;doubled&quot;: 42',
    );

    // Dead: the death error, and links both ways with the dead letter.
    const [dl] = await client.deadLetters(doomed).list();
    const deadPage = await text(`${d.url}tasks/h_doomed/jobs/${dead.id}`);
    expect(deadPage).toContain('Error: never works');
    expect(deadPage).toContain(`href="/queues/h_doomed_dlq?id=${dl!.id}"`);
    const dlq = await text(`${d.url}queues/h_doomed_dlq?id=${dl!.id}`);
    expect(dlq).toContain(`href="/tasks/h_doomed/jobs/${dead.id}"`);
    // Requeued: the dead letter (archived) names the new job, which links back.
    const [moved] = await client.deadLetters(doomed).requeue({ ids: [dl!.id] });
    const again = await text(`${d.url}tasks/h_doomed/jobs/${dead.id}`);
    expect(again).toContain(`href="/queues/h_doomed_dlq?id=${dl!.id}&amp;archive=1"`);
    expect(again).toContain(`href="/tasks/h_doomed/jobs/${moved!.newId}"`);
    const fresh = await text(`${d.url}tasks/h_doomed/jobs/${moved!.newId}`);
    expect(fresh).toMatch(/requeued from\s*<a[^>]*data-dead-letter/);
    expect(fresh).toContain(`href="/tasks/h_doomed/jobs/${dead.id}"`);
    const archived = await text(`${d.url}queues/h_doomed_dlq?archive=1&id=${dl!.id}`);
    expect(archived).toContain(`href="/tasks/h_doomed/jobs/${moved!.newId}"`);

    // Flow: the parent lists its child, the child links to its parent.
    const parent = await text(`${d.url}tasks/h_root/jobs/${flow.parent.id}`);
    expect(parent).toContain(`href="/tasks/h_leaf/jobs/${flow.children[0]!.id}"`);
    expect(/<table id="job-children"[\s\S]*?<\/table>/.exec(parent)![0]).toContain('7');
    const child = await text(`${d.url}tasks/h_leaf/jobs/${flow.children[0]!.id}`);
    expect(child).toMatch(/child of flow parent\s*<a href="\/tasks\/h_root\/jobs\/\d+"/);
  });
});

describe('one job from its page', () => {
  const single = defineTask({ name: 'h_single', handler: async () => undefined });

  it('cancels it and comes back to it; read-only shows no buttons', async () => {
    const client = taskClient(db);
    const job = await client.enqueue(single, {}, { delayMs: 3_600_000 });
    const o = ops();
    const ro = db.track(await startDashboard({ port: 0, ops: o, refreshMs: 0 }));
    expect(await text(`${ro.url}tasks/h_single/jobs/${job.id}`)).not.toContain('id="job-actions"');
    const d = db.track(await startDashboard({ port: 0, ops: o, refreshMs: 0, allowWrites: true }));
    const page = await text(`${d.url}tasks/h_single/jobs/${job.id}`);
    expect(page).toContain('id="job-actions"');
    const res = await fetch(`${d.url}tasks/h_single/actions`, {
      method: 'POST',
      redirect: 'manual',
      body: new URLSearchParams({
        csrf: csrfOf(page),
        action: 'cancel',
        id: String(job.id),
        back: 'job',
      }),
    });
    expect(res.status).toBe(303);
    const to = decodeURIComponent(res.headers.get('location')!);
    expect(to).toBe(`/tasks/h_single/jobs/${job.id}?flash=cancel: done (cancelled (was queued))`);
    expect((await client.getJob(single, job.id))?.state).toBe('cancelled');
    expect(await text(`${d.url}tasks/h_single/jobs/${job.id}`)).toMatch(
      /id="job-state" data-live>cancelled</,
    );
  });
});

describe('bulk actions by filter', () => {
  const hold = defineTask({ name: 'h_hold', handler: async () => undefined });
  const hold2 = defineTask({ name: 'h_hold2', handler: async () => undefined });

  it('counts what an operation would touch, as the bulk methods match', async () => {
    const client = taskClient(db);
    for (const plan of ['pro', 'pro', 'free'])
      await client.enqueue(hold, { plan }, { delayMs: 3_600_000 });
    const o = ops();
    // The read pool refuses writes, as a replica would.
    await expect(execute(o.read, 'CREATE TEMPORARY TABLE h_probe (a int)')).rejects.toThrow(
      /read-only transaction/,
    );
    const count = (op: 'retry' | 'cancel' | 'delete', f: object) =>
      countBulk(o.read, o.schemas, op, 'h_hold', f);
    expect(await count('cancel', { state: 'scheduled', payload: { plan: 'pro' } })).toEqual({
      states: ['scheduled'],
      count: 2,
      capped: false,
    });
    expect((await count('cancel', {})).count).toBe(3); // default: queued, scheduled, retrying
    expect((await count('retry', {})).count).toBe(0);
    await expect(count('delete', {})).rejects.toBeInstanceOf(TaskConfigError);
    await expect(count('retry', { state: 'queued' })).rejects.toBeInstanceOf(TaskConfigError);
  });

  it('previews with the count, then runs on confirmation; read-only refuses', async () => {
    const client = taskClient(db);
    for (const plan of ['pro', 'pro', 'free'])
      await client.enqueue(hold2, { plan }, { delayMs: 3_600_000 });
    const o = ops();
    const ro = db.track(await startDashboard({ port: 0, ops: o, refreshMs: 0 }));
    const q = 'bulk=1&op=cancel&task=h_hold2&state=scheduled&where=plan%3Dpro';
    const roPage = await text(`${ro.url}tasks?${q}`);
    expect(roPage).toContain('cancel 2 jobs of h_hold2 in states scheduled');
    expect(roPage).not.toContain('data-action="bulk-confirm"');
    expect(roPage).not.toContain('id="bulk-form"');
    const refused = await fetch(`${ro.url}tasks/h_hold2/bulk`, {
      method: 'POST',
      body: new URLSearchParams({ op: 'cancel', state: 'scheduled' }),
    });
    expect(refused.status).toBe(403);

    const d = db.track(await startDashboard({ port: 0, ops: o, refreshMs: 0, allowWrites: true }));
    // A task page's search leads to the bulk form, filled in.
    const search = await text(`${d.url}tasks/h_hold2?state=scheduled&where=plan%3Dpro`);
    expect(search).toContain(
      'href="/tasks?task=h_hold2&amp;state=scheduled&amp;where=plan%3Dpro#bulk-form"',
    );
    const filled = await text(`${d.url}tasks?task=h_hold2&state=scheduled&where=plan%3Dpro`);
    expect(filled).toMatch(/value="scheduled"\s+checked/);
    expect(filled).toContain('name="where" placeholder="field.path=value" value="plan=pro"');
    expect(filled).not.toContain('id="bulk-confirm"');
    const page = await text(`${d.url}tasks?${q}`);
    expect(page).toContain('id="bulk-form"');
    expect(page).toContain('data-action="bulk-confirm"');
    const body = new URLSearchParams({ csrf: csrfOf(page), op: 'cancel', where: 'plan=pro' });
    body.append('state', 'scheduled');
    body.append('expected', '2');
    const noToken = await fetch(`${d.url}tasks/h_hold2/bulk`, {
      method: 'POST',
      body: new URLSearchParams({ op: 'cancel', state: 'scheduled' }),
    });
    expect(noToken.status).toBe(403);
    const res = await fetch(`${d.url}tasks/h_hold2/bulk`, {
      method: 'POST',
      redirect: 'manual',
      body,
    });
    expect(res.status).toBe(303);
    expect(decodeURIComponent(res.headers.get('location')!)).toBe(
      '/tasks?flash=cancel h_hold2: 2 jobs',
    );
    const left = await db.sql<{ plan: string }>(
      `SELECT message->>'plan' AS plan FROM ${db.queueSchema}.q_h_hold2`,
    );
    expect(left.map((r) => r.plan)).toEqual(['free']);
    // A filter the operation refuses: said in the confirmation, nothing to confirm.
    const bad = await text(`${d.url}tasks?bulk=1&op=delete&task=h_hold2`);
    expect(bad).toMatch(/give the states to delete/);
    expect(bad).not.toContain('data-action="bulk-confirm"');
  });
});
