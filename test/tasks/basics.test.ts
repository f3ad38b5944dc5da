import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import * as v from 'valibot';
import { defineTask } from '../../src/tasks/define.js';
import { TaskValidationError, TaskConfigError } from '../../src/tasks/errors.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, worker } from './helpers.js';

const db = useTestDatabase();

describe('tasks: enqueue and run', () => {
  it('runs an enqueued job with its validated (zod) input and archives it', async () => {
    const seen: unknown[] = [];
    const email = defineTask({
      name: 'email_zod',
      schema: z.object({ to: z.string().email(), n: z.coerce.number() }),
      handler: (input, ctx) => {
        seen.push({ input, attempt: ctx.job.attempt });
      },
    });
    const client = taskClient(db);
    const job = await client.enqueue(email, { to: 'a@example.com', n: '5' });
    expect(job).toMatchObject({ task: 'email_zod', duplicate: false });
    expect((await client.getJob(email, job.id))!.state).toBe('queued');
    const w = worker(db, { tasks: [email] });
    await w.start();
    await eventually(() => seen.length === 1);
    expect(seen[0]).toEqual({ input: { to: 'a@example.com', n: 5 }, attempt: 1 });
    await eventually(async () => (await client.getJob(email, job.id))?.state === 'completed');
    await w.stop();
  });

  it('refuses bad input on enqueue with zod and valibot, sending nothing', async () => {
    const client = taskClient(db);
    const a = defineTask({
      name: 'bad_zod',
      schema: z.object({ n: z.number() }),
      handler: () => undefined,
    });
    const b = defineTask({
      name: 'bad_valibot',
      schema: v.object({ n: v.number() }),
      handler: () => undefined,
    });
    await expect(client.enqueue(a, { n: 'x' } as unknown as { n: number })).rejects.toBeInstanceOf(
      TaskValidationError,
    );
    const err = await client
      .enqueue(b, { n: 'x' } as unknown as { n: number })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskValidationError);
    expect((err as TaskValidationError).message).toMatch(/bad_valibot.*n:/);
    expect((err as TaskValidationError).code).toBe('PGFERRY_TASK_VALIDATION');
    // Nothing was sent (the queues may not even exist yet).
    const rows = await db.sql(
      `SELECT count(*)::int AS n FROM ${db.queueSchema}.meta WHERE queue_name IN ('bad_zod', 'bad_valibot')`,
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('dead-letters bad input found on dequeue (valibot), without calling the handler', async () => {
    let called = 0;
    const t = defineTask({
      name: 'deq_valibot',
      schema: v.object({ n: v.number() }),
      handler: () => void called++,
    });
    const client = taskClient(db);
    await client.ensure(t);
    // Another producer (any pgmq client) sends something the schema refuses.
    await db.sql(`SELECT ${db.queueSchema}.send('deq_valibot', '{"n":"nope"}')`);
    const dead: unknown[] = [];
    const w = worker(db, { tasks: [t], hooks: { 'job:dead': (job, err) => dead.push(err) } });
    await w.start();
    await eventually(() => dead.length === 1);
    expect(called).toBe(0);
    expect(dead[0]).toBeInstanceOf(TaskValidationError);
    const [letter] = await client.deadLetters(t).list();
    expect(letter!.input).toEqual({ n: 'nope' });
    expect(letter!.error.class).toBe('TaskValidationError');
    expect(letter!.attempts).toBe(1);
    await w.stop();
  });

  it('returns the first job for a repeated idempotency key, also under concurrent enqueues', async () => {
    const t = defineTask<{ i: number }>({ name: 'idem', handler: () => undefined });
    const clients = [taskClient(db), taskClient(db), taskClient(db), taskClient(db)];
    await clients[0]!.ensure(t);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        clients[i % 4]!.enqueue(t, { i }, { idempotencyKey: `k${i % 5}` }),
      ),
    );
    const byKey = new Map<string, Set<number>>();
    results.forEach((r, i) => {
      const k = `k${i % 5}`;
      byKey.set(k, (byKey.get(k) ?? new Set()).add(r.id));
    });
    for (const ids of byKey.values()) expect(ids.size).toBe(1);
    expect(results.filter((r) => !r.duplicate)).toHaveLength(5);
    const rows = await db.sql(`SELECT count(*)::int AS n FROM ${db.queueSchema}.q_idem`);
    expect(rows[0]!.n).toBe(5);
    // Batch form: duplicates inside the batch and against the queue.
    const batch = await clients[0]!.enqueueBatch(t, [
      { input: { i: 100 }, options: { idempotencyKey: 'k0' } },
      { input: { i: 101 }, options: { idempotencyKey: 'new' } },
      { input: { i: 102 }, options: { idempotencyKey: 'new' } },
      { input: { i: 103 } },
    ]);
    expect(batch[0]).toEqual({
      id: byKey.get('k0')!.values().next().value,
      task: 'idem',
      duplicate: true,
    });
    expect(batch[1]!.duplicate).toBe(false);
    expect(batch[2]).toEqual({ ...batch[1], duplicate: true });
    expect(batch[3]!.duplicate).toBe(false);
  });

  it('enqueues inside the caller transaction: rolled back with it, visible after commit', async () => {
    const t = defineTask<{ x: number }>({ name: 'txjobs', handler: () => undefined });
    const client = taskClient(db);
    await client.ensure(t);
    const conn = await db.pool.connect();
    try {
      await conn.query('BEGIN');
      await client.enqueue(t, { x: 1 }, { tx: conn });
      await conn.query('ROLLBACK');
      await conn.query('BEGIN');
      const j = await client.enqueue(t, { x: 2 }, { tx: conn });
      expect(await client.getJob(t, j.id)).toBeNull(); // not visible outside yet
      await conn.query('COMMIT');
      expect((await client.getJob(t, j.id))!.input).toEqual({ x: 2 });
    } finally {
      conn.release();
    }
    const rows = await db.sql(`SELECT message FROM ${db.queueSchema}.q_txjobs`);
    expect(rows.map((r) => r.message)).toEqual([{ x: 2 }]);
  });

  it('delays jobs (delayMs, runAt) and refuses misuse with typed errors', async () => {
    const t = defineTask<{ x: number }>({ name: 'delayed', handler: () => undefined });
    const client = taskClient(db);
    const a = await client.enqueue(t, { x: 1 }, { delayMs: 60_000 });
    const b = await client.enqueue(t, { x: 2 }, { runAt: new Date(Date.now() + 3_600_000) });
    expect((await client.getJob(t, a.id))!.state).toBe('scheduled');
    expect((await client.getJob(t, b.id))!.runAt.getTime()).toBeGreaterThan(Date.now() + 3_000_000);
    await expect(client.enqueue(t, { x: 3 }, { group: 'g' })).rejects.toBeInstanceOf(
      TaskConfigError,
    );
    await expect(client.enqueue(t, { x: 3 }, { priority: 5 })).rejects.toBeInstanceOf(
      TaskConfigError,
    );
    await expect(client.enqueue(t, { x: 3 }, { delayMs: 1, runAt: new Date() })).rejects.toThrow(
      /not both/,
    );
    expect(() => defineTask({ name: 'bad-name', handler: () => undefined })).toThrow(
      TaskConfigError,
    );
    expect(() => defineTask({ name: 'x'.repeat(44), handler: () => undefined })).toThrow(/43/);
    expect(() => defineTask({ name: 'c', cron: 'not a cron', handler: () => undefined })).toThrow(
      /cron/,
    );
  });
});

describe('tasks: the SQL API', () => {
  it('lets any client enqueue with <tasks>.enqueue (idempotency included) and a worker runs it', async () => {
    const got: unknown[] = [];
    const t = defineTask<{ from: string }>({
      name: 'from_sql',
      handler: (input) => void got.push(input),
    });
    const client = taskClient(db);
    await db.sql(`SELECT pgferry_tasks.ensure_task('from_sql')`);
    const first = await db.sql(
      `SELECT * FROM pgferry_tasks.enqueue('from_sql', '{"from":"sql"}', '{"x-pgferry-idempotency-key":"k"}')`,
    );
    const again = await db.sql(
      `SELECT * FROM pgferry_tasks.enqueue('from_sql', '{"from":"sql2"}', '{"x-pgferry-idempotency-key":"k"}')`,
    );
    expect(first[0]).toEqual({ msg_id: expect.any(String), duplicate: false });
    expect(again[0]).toEqual({ msg_id: first[0]!.msg_id, duplicate: true });
    await worker(db, { tasks: [t] }).runUntilIdle();
    expect(got).toEqual([{ from: 'sql' }]);
    expect((await client.getJob(t, Number(first[0]!.msg_id)))!.state).toBe('completed');
    await expect(db.sql(`SELECT pgferry_tasks.ensure_task('bad name')`)).rejects.toMatchObject({
      code: 'PF301',
    });
  });
});
