// The queue page's raw actions on a task's queue go through the tasks engine
// (src/ops/queue-actions.ts), so a flow's parent is never left held for ever.
import { describe, expect, it } from 'vitest';
import { browseJobs } from '../../src/ops/browse.js';
import { Ops } from '../../src/ops/ops.js';
import { startDashboard } from '../../src/ops/dashboard/server.js';
import { defineTask } from '../../src/tasks/define.js';
import { useTestDatabase } from '../support/db.js';
import { taskClient } from '../tasks/helpers.js';

const db = useTestDatabase();
const T = 'pgferry_tasks';
const kid = defineTask<{ n: number }>({ name: 'qa_kid', handler: () => undefined });
const top = defineTask<{ n: number }>({ name: 'qa_top', handler: () => undefined });
const kid2 = defineTask<{ n: number }>({ name: 'qa_kid2', handler: () => undefined });
const top2 = defineTask<{ n: number }>({ name: 'qa_top2', handler: () => undefined });

async function dashboard(queuePage: string) {
  const ops = db.track(new Ops({ connectionString: db.url, schemas: { queue: db.queueSchema } }));
  const d = db.track(await startDashboard({ port: 0, ops, refreshMs: 0, allowWrites: true }));
  const page = await (await fetch(d.url + 'queues/' + queuePage)).text();
  const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(page)![1]!;
  /** POSTs a queue action; the flash message it redirects with. */
  return async (queue: string, action: string, ids: number[]): Promise<string> => {
    const body = new URLSearchParams({ action, csrf });
    for (const id of ids) body.append('id', String(id));
    const res = await fetch(`${d.url}queues/${queue}/actions`, {
      method: 'POST',
      redirect: 'manual',
      body,
    });
    expect(res.status).toBe(303);
    const loc = new URL(res.headers.get('location')!, d.url);
    expect(loc.pathname).toBe(`/queues/${queue}`);
    return loc.searchParams.get('flash')!;
  };
}

describe('dashboard queue actions on a task queue', () => {
  it('archive cancels (the parent counts the child), delete refuses a flow child; the parent is released', async () => {
    const client = taskClient(db);
    const flow = await client.enqueueFlow({
      parent: { task: top, input: { n: 0 } },
      children: [1, 2].map((n) => ({ task: kid, input: { n } })),
      onChildFailure: 'continue',
    });
    const [c1, c2] = flow.children.map((c) => c.id);
    const post = await dashboard('qa_kid');
    expect(await post('qa_kid', 'archive', [c1!])).toBe(
      "qa_kid is a task's queue: archive ran as the task's cancel (flows counted): 1 of 1 done",
    );
    expect((await client.getJob(kid, c1!))!.state).toBe('cancelled');
    expect(await post('qa_kid', 'delete', [c2!, 999_999])).toBe(
      "qa_kid is a task's queue: delete ran as the task's delete (flows counted): 0 of 2 done; " +
        `skipped ${c2}: a flow child: cancel it instead (its parent counts it; a deleted one it would wait for); ` +
        '999999: no such job',
    );
    expect((await client.getJob(kid, c2!))!.state).toBe('queued');
    expect((await client.getJob(top, flow.parent.id))!.state).toBe('scheduled'); // still held
    await post('qa_kid', 'archive', [c2!]);
    // Both children counted: the parent runs now.
    expect((await client.getJob(top, flow.parent.id))!.state).toBe('queued');
    expect((await client.childResults(top, flow.parent.id)).map((k) => k.state)).toEqual([
      'cancelled',
      'cancelled',
    ]);
    // A job that is no flow child is deleted as the task page deletes it.
    const plain = await client.enqueue(kid, { n: 3 });
    expect(await post('qa_kid', 'delete', [plain.id])).toMatch(/: 1 of 1 done$/);
    expect(await client.getJob(kid, plain.id)).toBeNull();
  });

  it("requeue from <task>_dlq makes a new job that keeps its flow's children", async () => {
    const client = taskClient(db);
    const flow = await client.enqueueFlow({
      parent: { task: top2, input: { n: 10 } },
      children: [{ task: kid2, input: { n: 11 } }],
    });
    const [leased] = await db.sql<{ msg_id: string; read_ct: number }>(
      `SELECT msg_id, read_ct FROM ${T}.fetch('qa_kid2', 1, 60000, false, false, false, NULL)`,
    );
    expect(Number(leased!.msg_id)).toBe(flow.children[0]!.id);
    const err = { class: 'Error', name: 'Error', message: 'kid broke', stack: null };
    await db.sql(`SELECT ${T}.dead_letter('qa_kid2', $1, $2, $3::jsonb)`, [
      leased!.msg_id,
      leased!.read_ct,
      JSON.stringify(err),
    ]);
    const [dead] = await client.deadLetters(top2).list(); // the parent, failed by its child
    expect(dead!.originalId).toBe(flow.parent.id);
    const post = await dashboard('qa_top2_dlq');
    expect(await post('qa_top2_dlq', 'requeue', [dead!.id])).toBe(
      'requeued 1 of 1 as new jobs of task qa_top2',
    );
    const again = await browseJobs(client.driver, T, 'qa_top2', {
      headers: { 'x-pgferry-rescheduled-from': dead!.id },
    });
    expect(again).toHaveLength(1);
    expect(again[0]!.headers!['x-pgferry-rescheduled-from']).toBe(dead!.id);
    const kids = await client.childResults(top2, again[0]!.msgId);
    expect(kids.map((k) => [k.id, k.state, k.error?.message])).toEqual([
      [flow.children[0]!.id, 'dead', 'kid broke'],
    ]);
  });
});
