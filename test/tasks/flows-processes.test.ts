import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { defineTask } from '../../src/tasks/define.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, workerProcess } from './helpers.js';

const db = useTestDatabase();
const script = fileURLToPath(new URL('./fixtures/flow-worker.ts', import.meta.url));
// The fixture's tasks, as the enqueuing side declares them (handlers run in the processes).
const child = defineTask<{ n: number; hang?: boolean }>({ name: 'flow_child', handler: () => 0 });
const parent = defineTask<{ flow: number }>({ name: 'flow_parent', handler: () => 0 });

const proc = (env: Record<string, string>, onLine?: (line: string) => void) =>
  workerProcess(db, script, env, onLine);

describe('tasks: flows across worker processes', () => {
  it('a worker killed (SIGKILL) between a child and its parent: another worker finishes the flow', async () => {
    await db.sql(
      `CREATE TABLE IF NOT EXISTS flow_runs (flow int, parent_id bigint, pid int, children jsonb)`,
    );
    const client = taskClient(db);
    const started = new Set<number>();
    const victim = await proc({ HANG: '1', CONCURRENCY: '2' }, (line) => {
      if (line.startsWith('started ')) started.add(Number(line.slice(8)));
    });
    const flow = await client.enqueueFlow({
      parent: { task: parent, input: { flow: 1 } },
      children: [
        { task: child, input: { n: 2 } },
        { task: child, input: { n: 3, hang: true } },
      ],
    });
    const [c1, c2] = flow.children;
    // The victim finished child 1 and hangs in child 2.
    await eventually(
      async () => (await client.getJob(child, c1!.id))?.state === 'completed',
      15_000,
    );
    await eventually(() => started.has(c2!.id), 15_000);
    victim.kill('SIGKILL');
    await new Promise((r) => victim.once('exit', r));
    expect((await client.getJob(parent, flow.parent.id))!.state).toBe('scheduled'); // still held
    const rescuer = await proc({ CONCURRENCY: '2' });
    // 4 + 9: both children's results reached the parent.
    expect(await client.waitForResult(parent, flow.parent.id, { timeoutMs: 20_000 })).toBe(13);
    const runs = await db.sql<{
      pid: number;
      children: { id: number; state: string; result: { pid: number } }[];
    }>(`SELECT pid, children FROM flow_runs WHERE flow = 1`);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.pid).toBe(rescuer.pid);
    expect(runs[0]!.children.map((c) => [c.id, c.state, c.result.pid])).toEqual([
      [c1!.id, 'completed', victim.pid],
      [c2!.id, 'completed', rescuer.pid],
    ]);
    const h = await client.history(child, c2!.id);
    expect(h!.map((a) => a.outcome)).toEqual(['lost', 'completed']);
    rescuer.kill('SIGTERM');
  });

  it('many flows over 3 processes: every parent runs exactly once, after all its children', async () => {
    await db.sql(
      `CREATE TABLE IF NOT EXISTS flow_runs (flow int, parent_id bigint, pid int, children jsonb)`,
    );
    const client = taskClient(db);
    const procs = await Promise.all([proc({}), proc({}), proc({})]);
    const flows = [];
    for (let f = 100; f < 140; f++) {
      flows.push(
        await client.enqueueFlow({
          parent: { task: parent, input: { flow: f } },
          children: [1, 2, 3].map((n) => ({ task: child, input: { n } })),
        }),
      );
    }
    await eventually(
      async () =>
        (
          await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM flow_runs WHERE flow >= 100`)
        )[0]!.n >= 40,
      60_000,
    );
    for (const f of flows)
      expect(await client.waitForResult(parent, f.parent.id, { timeoutMs: 10_000 })).toBe(14);
    const runs = await db.sql<{ flow: number; n: number; done: number; pids: number }>(
      `SELECT flow, count(*)::int AS n,
              (SELECT count(*)::int FROM jsonb_array_elements(min(children::text)::jsonb) c WHERE c->>'state' = 'completed') AS done
         FROM flow_runs WHERE flow >= 100 GROUP BY flow ORDER BY flow`,
    );
    expect(runs).toHaveLength(40);
    for (const r of runs) expect([r.n, r.done]).toEqual([1, 3]);
    const left = await db.sql(
      `SELECT count(*)::int AS n FROM pgferry_tasks.flows WHERE pending <> 0`,
    );
    expect(left[0]!.n).toBe(0);
    const pids = await db.sql(
      `SELECT count(DISTINCT pid)::int AS n FROM flow_runs WHERE flow >= 100`,
    );
    expect(pids[0]!.n).toBeGreaterThanOrEqual(2);
    for (const p of procs) p.kill('SIGTERM');
  });
});
