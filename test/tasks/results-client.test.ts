import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { TaskConfigError } from '../../src/tasks/errors.js';
import { InvalidArgumentError } from '../../src/errors.js';
import {
  JobFailedError,
  JobNotFoundError,
  ResultTimeoutError,
} from '../../src/tasks/outcome-errors.js';
import type { TaskClient } from '../../src/tasks/client.js';
import type { Queryable } from '../../src/driver/types.js';
import { pollDelay, waitForResult } from '../../src/tasks/results.js';
import { useTestDatabase } from '../support/db.js';
import { connections } from '../support/connections.js';
import { sleep, taskClient } from './helpers.js';

// The SQL and client side of results, progress, flows and history, driven
// through the SQL functions a worker calls (worker.test files run handlers).
const db = useTestDatabase();
const T = 'pgferry_tasks';
const noop = () => undefined;
const calc = defineTask<{ n: number }>({ name: 'calc', handler: noop });
const sum = defineTask<{ label: string }>({ name: 'sum', handler: noop });

/** Leases every visible job of `task` (as a worker's fetch does). */
async function lease(client: TaskClient, task: string, leaseMs = 60_000) {
  const rows = await client.statements.fetch(
    client.driver,
    task,
    100,
    leaseMs,
    false,
    false,
    false,
    null,
  );
  return rows.map((r) => ({ id: Number(r.msg_id), rc: Number(r.read_ct) }));
}

async function completeWith(task: string, id: number, rc: number, result: unknown) {
  const rows = await db.sql(
    `SELECT r FROM ${T}.complete_results($1, ARRAY[$2::bigint], ARRAY[$3::int], ARRAY[$4::jsonb]) AS r`,
    [task, id, rc, result === undefined ? null : JSON.stringify(result)],
  );
  return rows.length;
}

describe('tasks: stored results', () => {
  it('stores a result with the completion, keeps it after the archive is pruned, until its own retention', async () => {
    const client = taskClient(db);
    const job = await client.enqueue(calc, { n: 2 });
    expect((await client.result(calc, job.id)).state).toBe('queued');
    const [l] = await lease(client, 'calc');
    expect(await completeWith('calc', l!.id, l!.rc, { square: 4 })).toBe(1);
    expect(await client.result(calc, job.id)).toEqual({
      state: 'completed',
      result: { square: 4 },
      error: null,
      progress: undefined,
    });
    expect(await client.waitForResult(calc, job.id)).toEqual({ square: 4 });
    // The archive row goes; the result stays.
    expect(await client.prune(calc, { retentionMs: 0 })).toBeGreaterThanOrEqual(1);
    expect(await client.getJob(calc, job.id)).toBeNull();
    expect(await client.waitForResult(calc, job.id, { timeoutMs: 0 })).toEqual({ square: 4 });
    // A young result survives its retention; then it goes.
    expect(await client.pruneResults(calc, { retentionMs: 60_000 })).toBe(0);
    expect(await client.pruneResults(calc, { retentionMs: 0 })).toBe(1);
    expect((await client.result(calc, job.id)).state).toBe('unknown');
    await expect(client.waitForResult(calc, job.id)).rejects.toBeInstanceOf(JobNotFoundError);
  });

  it('a null result differs from none; a stale read count stores nothing', async () => {
    const client = taskClient(db);
    const a = await client.enqueue(calc, { n: 0 });
    const b = await client.enqueue(calc, { n: 1 });
    const ls = await lease(client, 'calc');
    expect(await completeWith('calc', a.id, ls[0]!.rc + 1, 'stale')).toBe(0);
    expect(await completeWith('calc', a.id, ls[0]!.rc, null)).toBe(1);
    expect(await completeWith('calc', b.id, ls[1]!.rc, undefined)).toBe(1);
    expect(await client.result(calc, a.id)).toMatchObject({ state: 'completed', result: null });
    expect(await client.result(calc, b.id)).toMatchObject({
      state: 'completed',
      result: undefined,
    });
    const n = await db.sql(`SELECT count(*)::int AS n FROM ${T}.job_results WHERE msg_id = $1`, [
      b.id,
    ]);
    expect(n[0]!.n).toBe(0); // nothing stored for a handler that returned nothing
  });

  it('waitForResult looks again after 5 ms, then at doubling pauses up to pollIntervalMs', async () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 40].map((i) => pollDelay(i, 200))).toEqual([
      5, 10, 20, 40, 80, 160, 200, 200, 200,
    ]);
    expect([0, 1, 2].map((i) => pollDelay(i, 8))).toEqual([5, 8, 8]);
    // The job completes just before the 4th look, which returns its result.
    const client = taskClient(db);
    const job = await client.enqueue(calc, { n: 5 });
    const [l] = await lease(client, 'calc');
    let looks = 0;
    const counting: Queryable = {
      query: async (text, params, options) => {
        if (text.includes('job_result') && ++looks === 4)
          await completeWith('calc', l!.id, l!.rc, 25);
        return client.driver.query(text, params, options);
      },
    };
    const got = await waitForResult<number>(counting, client.statements, 'calc', job.id, {
      timeoutMs: 60_000,
    });
    expect(got).toBe(25);
    expect(looks).toBe(4);
  });

  it('waitForResult: resolves when the job completes later, times out, and reports a death with its error', async () => {
    const client = taskClient(db);
    const job = await client.enqueue(calc, { n: 3 });
    const [l] = await lease(client, 'calc');
    const t0 = Date.now();
    const waiting = client.waitForResult<number>(calc, job.id, {
      timeoutMs: 20_000,
      pollIntervalMs: 20,
    });
    await sleep(300);
    await completeWith('calc', l!.id, l!.rc, 9);
    expect(await waiting).toBe(9);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);

    const slow = await client.enqueue(calc, { n: 4 });
    const err = await client
      .waitForResult(calc, slow.id, { timeoutMs: 150 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResultTimeoutError);
    expect((err as ResultTimeoutError).lastState).toBe('queued');

    const [d] = await lease(client, 'calc');
    const error = {
      class: 'TypeError',
      name: 'TypeError',
      message: 'boom',
      stack: 'TypeError: boom\n    at x',
    };
    await db.sql(`SELECT ${T}.dead_letter('calc', $1, $2, $3::jsonb)`, [
      d!.id,
      d!.rc,
      JSON.stringify(error),
    ]);
    await client.prune(calc, { retentionMs: 0 }); // the death outlives the archive too
    const dead = await client.waitForResult(calc, slow.id).catch((e: unknown) => e);
    expect(dead).toBeInstanceOf(JobFailedError);
    expect(dead).toMatchObject({ state: 'dead', jobError: error, code: 'PGFERRY_JOB_FAILED' });

    const c = await client.enqueue(calc, { n: 5 });
    await client.cancel(calc, c.id);
    await expect(client.waitForResult(calc, c.id)).rejects.toMatchObject({ state: 'cancelled' });
    await expect(client.result(calc, 0)).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('tasks: progress', () => {
  it('stores progress on the running job, fenced by its read count; the archive keeps the last value', async () => {
    const client = taskClient(db);
    const job = await client.enqueue(calc, { n: 6 });
    const [l] = await lease(client, 'calc');
    const progress = (rc: number, v: unknown) =>
      db.sql(`SELECT ${T}.progress('calc', $1, $2, $3::jsonb) AS ok`, [
        job.id,
        rc,
        JSON.stringify(v),
      ]);
    expect((await progress(l!.rc, 10))[0]!.ok).toBe(true);
    expect((await progress(l!.rc + 1, 99))[0]!.ok).toBe(false);
    expect((await client.getJob(calc, job.id))!.progress).toBe(10);
    expect((await progress(l!.rc, { done: 5, of: 10 }))[0]!.ok).toBe(true);
    expect((await client.result(calc, job.id)).progress).toEqual({ done: 5, of: 10 });
    await completeWith('calc', l!.id, l!.rc, undefined);
    expect((await client.getJob(calc, job.id))!.progress).toEqual({ done: 5, of: 10 });
    expect((await client.result(calc, job.id)).progress).toEqual({ done: 5, of: 10 });
  });
});

describe('tasks: attempt history', () => {
  it('keeps failed attempts with errors and timings; the final attempt and lost ones are derived', async () => {
    const client = taskClient(db);
    const job = await client.enqueue(calc, { n: 7 });
    // Attempt 1 is lost (its lease runs out), 2 fails, 3 completes.
    await lease(client, 'calc', 1);
    await sleep(20);
    const [l2] = await lease(client, 'calc');
    const err = {
      class: 'Error',
      name: 'Error',
      message: 'flaky',
      stack: 'Error: flaky\n    at y',
    };
    await db.sql(`SELECT ${T}.retry('calc', $1, $2, 0, $3::jsonb)`, [
      job.id,
      l2!.rc,
      JSON.stringify(err),
    ]);
    const mid = await client.history(calc, job.id);
    expect(mid!.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'lost'],
      [2, 'retry'],
    ]);
    const [l3] = await lease(client, 'calc');
    expect((await client.history(calc, job.id))!.at(-1)).toMatchObject({
      attempt: 3,
      outcome: 'running',
      finishedAt: null,
    });
    await completeWith('calc', l3!.id, l3!.rc, undefined);
    const h = (await client.history(calc, job.id))!;
    expect(h.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'lost'],
      [2, 'retry'],
      [3, 'completed'],
    ]);
    expect(h[1]!.error).toEqual(err);
    for (const a of h.slice(1)) {
      expect(a.startedAt).toBeInstanceOf(Date);
      expect(a.finishedAt!.getTime()).toBeGreaterThanOrEqual(a.startedAt!.getTime());
    }
    expect(await client.history(calc, 999_999)).toBeNull();
  });

  it('keeps the last 25 failed attempts; a dead job ends with its dead attempt', async () => {
    const client = taskClient(db);
    const job = await client.enqueue(calc, { n: 8 });
    for (let i = 1; i <= 30; i++) {
      const [l] = await lease(client, 'calc');
      const e = JSON.stringify({
        class: 'Error',
        name: 'Error',
        message: `fail ${i}`,
        stack: null,
      });
      if (i < 30)
        await db.sql(`SELECT ${T}.retry('calc', $1, $2, 0, $3::jsonb)`, [job.id, l!.rc, e]);
      else await db.sql(`SELECT ${T}.dead_letter('calc', $1, $2, $3::jsonb)`, [job.id, l!.rc, e]);
    }
    const h = (await client.history(calc, job.id))!;
    expect(h).toHaveLength(25);
    expect(h[0]).toMatchObject({ attempt: 6, outcome: 'retry' });
    expect(h[24]).toMatchObject({ attempt: 30, outcome: 'dead', error: { message: 'fail 30' } });
    // The dead letter itself does not carry the history (a requeued job starts afresh).
    const dl = await client.deadLetters(calc).list();
    expect(dl.at(-1)!.headers['x-pgferry-history']).toBeUndefined();
  });
});

describe('tasks: flows (SQL side)', () => {
  it('holds the parent until the last child finishes, then passes the children results in order', async () => {
    const client = taskClient(db);
    const flow = await client.enqueueFlow({
      parent: { task: sum, input: { label: 'total' } },
      children: [
        { task: calc, input: { n: 1 } },
        { task: calc, input: { n: 2 } },
      ],
    });
    expect(flow.parent.task).toBe('sum');
    expect(flow.children.map((c) => c.task)).toEqual(['calc', 'calc']);
    expect((await client.getJob(sum, flow.parent.id))!.state).toBe('scheduled');
    expect(await lease(client, 'sum')).toEqual([]);
    const ls = await lease(client, 'calc');
    const [c1, c2] = flow.children.map((c) => ls.find((l) => l.id === c.id)!);
    await completeWith('calc', c2!.id, c2!.rc, 20);
    expect(await lease(client, 'sum')).toEqual([]); // one child left
    await completeWith('calc', c1!.id, c1!.rc, 10);
    expect((await lease(client, 'sum')).map((l) => l.id)).toEqual([flow.parent.id]);
    expect(await client.childResults(sum, flow.parent.id)).toEqual([
      { task: 'calc', id: flow.children[0]!.id, state: 'completed', result: 10, error: null },
      { task: 'calc', id: flow.children[1]!.id, state: 'completed', result: 20, error: null },
    ]);
  });

  it("'fail': a dead child dead-letters the parent at once; 'continue': the parent runs and sees the death", async () => {
    const client = taskClient(db);
    const err = JSON.stringify({
      class: 'Error',
      name: 'Error',
      message: 'child broke',
      stack: null,
    });
    for (const policy of ['fail', 'continue'] as const) {
      const flow = await client.enqueueFlow({
        parent: { task: sum, input: { label: policy } },
        children: [
          { task: calc, input: { n: 1 } },
          { task: calc, input: { n: 2 } },
        ],
        onChildFailure: policy,
      });
      const ls = await lease(client, 'calc');
      const [c1, c2] = flow.children.map((c) => ls.find((l) => l.id === c.id)!);
      await db.sql(`SELECT ${T}.dead_letter('calc', $1, $2, $3::jsonb)`, [c1!.id, c1!.rc, err]);
      if (policy === 'fail') {
        const e = await client.waitForResult(sum, flow.parent.id).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(JobFailedError);
        expect((e as JobFailedError).jobError).toMatchObject({
          class: 'ChildJobFailedError',
          child: { task: 'calc', id: c1!.id, state: 'dead', error: { message: 'child broke' } },
        });
        await completeWith('calc', c2!.id, c2!.rc, 2); // the other child still finishes normally
        expect(await lease(client, 'sum')).toEqual([]);
        expect(await client.history(sum, flow.parent.id)).toEqual([]); // it never ran
      } else {
        expect(await lease(client, 'sum')).toEqual([]);
        await completeWith('calc', c2!.id, c2!.rc, 2);
        expect((await lease(client, 'sum')).map((l) => l.id)).toEqual([flow.parent.id]);
        const kids = await client.childResults(sum, flow.parent.id);
        expect(kids.map((k) => [k.state, k.result, k.error?.message])).toEqual([
          ['dead', undefined, 'child broke'],
          ['completed', 2, undefined],
        ]);
      }
    }
  });

  it('a cancelled child counts as failed; cancelling the parent leaves the children running', async () => {
    const client = taskClient(db);
    const flow = await client.enqueueFlow({
      parent: { task: sum, input: { label: 'c' } },
      children: [{ task: calc, input: { n: 1 } }],
      onChildFailure: 'continue',
    });
    expect(await client.cancel(calc, flow.children[0]!.id)).toBe('queued');
    expect((await lease(client, 'sum')).map((l) => l.id)).toEqual([flow.parent.id]);
    expect((await client.childResults(sum, flow.parent.id))[0]!.state).toBe('cancelled');
  });

  it('children cancelled or deleted in bulk (bulk_cancel, bulk_delete) count towards their parents', async () => {
    const client = taskClient(db);
    const mk = (label: string, policy: 'fail' | 'continue', n: number) =>
      client.enqueueFlow({
        parent: { task: sum, input: { label } },
        children: [
          { task: calc, input: { n } },
          { task: calc, input: { n: n + 1 } },
        ],
        onChildFailure: policy,
      });
    const cont = await mk('bulk-cancel', 'continue', 700);
    const fail = await mk('bulk-delete', 'fail', 800);
    await db.sql(`SELECT ${T}.bulk_cancel('calc', '{queued}', '{"n": 700}')`);
    await db.sql(`SELECT ${T}.bulk_delete('calc', '{queued}', '{"n": 800}')`);
    expect((await client.result(calc, cont.children[0]!.id)).state).toBe('cancelled');
    expect((await client.result(sum, fail.parent.id)).error).toMatchObject({
      class: 'ChildJobFailedError',
      child: { id: fail.children[0]!.id, state: 'cancelled' },
    });
    await db.sql(`SELECT ${T}.bulk_cancel('calc', '{queued}', '{"n": 701}')`);
    expect((await lease(client, 'sum')).map((l) => l.id)).toEqual([cont.parent.id]);
    expect((await client.childResults(sum, cont.parent.id)).map((c) => c.state)).toEqual([
      'cancelled',
      'cancelled',
    ]);
  });

  it('two children finishing at once in two sessions release the parent exactly once', async () => {
    const client = taskClient(db);
    const [a, b] = await connections(db, 2);
    for (let round = 0; round < 15; round++) {
      const flow = await client.enqueueFlow({
        parent: { task: sum, input: { label: `r${round}` } },
        children: [
          { task: calc, input: { n: 1 } },
          { task: calc, input: { n: 2 } },
        ],
      });
      const ls = await lease(client, 'calc');
      const [c1, c2] = flow.children.map((c) => ls.find((l) => l.id === c.id)!);
      const done = (conn: typeof a, l: typeof c1) =>
        conn!.query(
          `SELECT ${T}.complete_results('calc', ARRAY[$1::bigint], ARRAY[$2::int], ARRAY['1'::jsonb])`,
          [l!.id, l!.rc],
        );
      await a!.query('BEGIN');
      await b!.query('BEGIN');
      await done(a, c1);
      const second = done(b, c2); // waits for a's lock on the parent's flow row
      await sleep(round % 3 === 0 ? 30 : 0);
      await Promise.all([a!.query('COMMIT'), second.then(() => b!.query('COMMIT'))]);
      const pending = await db.sql(
        `SELECT pending, failed FROM ${T}.flows WHERE parent_queue = 'sum' AND parent_id = $1`,
        [flow.parent.id],
      );
      expect(pending).toEqual([{ pending: 0, failed: 0 }]);
      expect((await lease(client, 'sum')).map((l) => l.id)).toEqual([flow.parent.id]);
    }
  });

  it('two batches finishing children of the same parents in opposite orders do not deadlock', async () => {
    const client = taskClient(db);
    const [a, b, c] = await connections(db, 3);
    const mk = (label: string) =>
      client.enqueueFlow({
        parent: { task: sum, input: { label } },
        children: [
          { task: calc, input: { n: 1 } },
          { task: calc, input: { n: 2 } },
        ],
      });
    const x = await mk('x');
    const y = await mk('y');
    const ls = await lease(client, 'calc');
    const rc = (id: number) => ls.find((l) => l.id === id)!.rc;
    const batch = (conn: typeof a, ids: number[]) =>
      conn!.query(
        `SELECT ${T}.complete_results('calc', $1::bigint[], $2::int[], ARRAY[NULL, NULL]::jsonb[])`,
        [ids, ids.map(rc)],
      );
    // c holds y's flow row, so a (y's child first, then x's) and b (x's, then y's) overlap.
    await c!.query('BEGIN');
    await c!.query(`SELECT 1 FROM ${T}.flows WHERE parent_id = $1 FOR UPDATE`, [y.parent.id]);
    await a!.query('BEGIN');
    await b!.query('BEGIN');
    const first = batch(a, [y.children[0]!.id, x.children[0]!.id]);
    await sleep(50);
    const second = batch(b, [x.children[1]!.id, y.children[1]!.id]);
    await sleep(50);
    await c!.query('COMMIT');
    await first;
    await a!.query('COMMIT');
    await second;
    await b!.query('COMMIT');
    const released = (await lease(client, 'sum')).map((l) => l.id).sort((p, q) => p - q);
    expect(released).toEqual([x.parent.id, y.parent.id]);
  });

  it('is atomic and refuses what a flow cannot hold', async () => {
    const client = taskClient(db);
    const calcs = () =>
      db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${db.queueSchema}.q_calc`);
    const before = (await calcs())[0]!.n;
    await expect(
      client.enqueueFlow({ parent: { task: sum, input: { label: 'x' } }, children: [] }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      client.enqueueFlow({
        parent: { task: sum, input: { label: 'x' }, options: { delayMs: 10 } },
        children: [{ task: calc, input: { n: 1 } }],
      }),
    ).rejects.toBeInstanceOf(TaskConfigError);
    await expect(
      client.enqueueFlow({
        parent: { task: sum, input: { label: 'x' } },
        children: [
          { task: calc, input: { n: 1 } },
          { task: calc, input: { n: 2 }, options: { idempotencyKey: 'k' } as never },
        ],
      }),
    ).rejects.toBeInstanceOf(TaskConfigError);
    // Children may be delayed or scheduled.
    const at = new Date(Date.now() + 3_600_000);
    const later = await client.enqueueFlow({
      parent: { task: sum, input: { label: 'later' } },
      children: [
        { task: calc, input: { n: 1 }, options: { delayMs: 60_000 } },
        { task: calc, input: { n: 2 }, options: { runAt: at } },
      ],
    });
    const [d1, d2] = await Promise.all(later.children.map((c) => client.getJob(calc, c.id)));
    expect([d1!.state, d2!.state]).toEqual(['scheduled', 'scheduled']);
    expect(d1!.runAt.getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect(d2!.runAt.getTime()).toBe(at.getTime());
    const before2 = (await calcs())[0]!.n;
    // In the caller's transaction: rolled back, nothing is left.
    await client
      .transaction(async (tx) => {
        await client.enqueueFlow(
          {
            parent: { task: sum, input: { label: 'x' } },
            children: [{ task: calc, input: { n: 1 } }],
          },
          { tx },
        );
        throw new Error('rollback');
      })
      .catch(() => undefined);
    expect((await calcs())[0]!.n).toBe(before2);
    expect(before2).toBe(before + 2);
    // From SQL, with a bad policy: PF301.
    await expect(
      client.transaction((tx) =>
        tx.query(
          `SELECT * FROM ${T}.enqueue_flow('sum', '{}', NULL, '[{"queue":"calc","input":{}}]', 'maybe')`,
        ),
      ),
    ).rejects.toBeInstanceOf(TaskConfigError);
  });
});
