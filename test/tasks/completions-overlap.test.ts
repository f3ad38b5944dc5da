import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import type { JobInfo } from '../../src/tasks/types.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { sleep, taskClient, worker } from './helpers.js';
import { testClient, testPool } from '../support/connections.js';

const db = useTestDatabase();
// The worker runs on the server database (also under PGFERRY_TEST_DRIVER=pglite): look there.
const raw = db.track(
  (() => {
    const pool = testPool({ connectionString: db.url, max: 2 });
    return { pool, close: () => pool.end() };
  })(),
).pool;
const sql = async <R extends pg.QueryResultRow>(text: string): Promise<R[]> =>
  (await raw.query<R>(text)).rows;

/**
 * A completion statement held up: a second connection locks the job's row
 * (after the worker leased it), so the worker's DELETE of that row waits
 * until `release()`. Real connections, no mocks.
 */
async function rowLock(table: string, id: number) {
  const c = testClient({ connectionString: db.url });
  await c.connect();
  await c.query('BEGIN');
  await c.query(`SELECT 1 FROM ${db.queueSchema}.${table} WHERE msg_id = $1 FOR UPDATE`, [id]);
  return {
    c,
    async release() {
      await c.query('COMMIT').catch(() => undefined);
      await c.end();
    },
  };
}

const count = async (table: string): Promise<number> =>
  (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${db.queueSchema}.${table}`))[0]!.n;

describe('tasks: a second completion statement beside a slow one', () => {
  it('commits later completions while the first statement waits, and stop() writes both', async () => {
    let lock: Awaited<ReturnType<typeof rowLock>> | undefined;
    const t = defineTask<{ i: number }>({
      name: 'overlap',
      handler: async ({ i }, ctx) => {
        if (i === 0) lock = await rowLock('q_overlap', ctx.job.id);
        // Later jobs finish after A's statement has started (jobs finished
        // in the same event-loop turn share one statement).
        else await sleep(50);
      },
    });
    const client = taskClient(db);
    const [a, b] = await client.enqueueBatch(t, [{ input: { i: 0 } }, { input: { i: 1 } }]);
    const w = worker(db, { tasks: [t], concurrency: 1 });
    const ok: number[] = [];
    w.on('job:success', (job: JobInfo) => ok.push(job.id));
    await w.start();
    // B's completion went in a statement of its own while A's waits for the lock.
    await eventually(() => ok.includes(b!.id));
    expect(ok).not.toContain(a!.id);
    expect(w.stats().tasks.overlap!.completing).toBe(1);
    expect(await count('a_overlap')).toBe(1);

    // A third job completes beside the held statement too.
    const c = await client.enqueue(t, { i: 2 });
    await eventually(() => ok.includes(c.id));
    expect(ok).not.toContain(a!.id);

    // stop() waits for the held completion instead of dropping it.
    let stopped = false;
    const stopping = w.stop().then(() => (stopped = true));
    await sleep(300);
    expect(stopped).toBe(false);
    await lock!.release();
    await stopping;
    expect(ok.sort()).toEqual([a!.id, b!.id, c.id].sort());
    expect(await count('q_overlap')).toBe(0);
    expect(await count('a_overlap')).toBe(3);
    expect(w.stats().tasks.overlap!.completing).toBe(0);
  });

  it('keeps completions with results behind the statement in flight (they share rows)', async () => {
    let lock: Awaited<ReturnType<typeof rowLock>> | undefined;
    const t = defineTask<{ i: number }>({
      name: 'overlap_results',
      handler: async ({ i }, ctx) => {
        if (i === 0) lock = await rowLock('q_overlap_results', ctx.job.id);
        return i;
      },
    });
    const client = taskClient(db);
    const [a, b] = await client.enqueueBatch(t, [{ input: { i: 0 } }, { input: { i: 1 } }]);
    const w = worker(db, { tasks: [t], concurrency: 1 });
    const ok: number[] = [];
    w.on('job:success', (job: JobInfo) => ok.push(job.id));
    await w.start();
    await eventually(() => lock !== undefined && w.stats().tasks.overlap_results!.completing === 2);
    await sleep(100);
    expect(ok).toEqual([]);
    await lock!.release();
    await eventually(() => ok.length === 2);
    expect(ok).toEqual([a!.id, b!.id]);
    expect(await client.result(t, b!.id)).toMatchObject({ state: 'completed', result: 1 });
    await w.stop();
  });

  it('loses nothing when the held statement’s connection dies: its job runs again after the lease', async () => {
    let lock: Awaited<ReturnType<typeof rowLock>> | undefined;
    const runs = new Map<number, number>();
    const t = defineTask<{ i: number }>({
      name: 'overlap_kill',
      timeoutMs: 300,
      handler: async ({ i }, ctx) => {
        runs.set(i, (runs.get(i) ?? 0) + 1);
        if (i === 0 && !lock) lock = await rowLock('q_overlap_kill', ctx.job.id);
        else await sleep(50);
      },
    });
    const client = taskClient(db);
    const [a, b] = await client.enqueueBatch(t, [{ input: { i: 0 } }, { input: { i: 1 } }]);
    const w = worker(db, { tasks: [t], concurrency: 1, leaseMarginMs: 200 });
    const ok: number[] = [];
    const errors: unknown[] = [];
    w.on('job:success', (job: JobInfo) => ok.push(job.id));
    w.on('worker:error', (err: unknown) => errors.push(err));
    await w.start();
    await eventually(() => ok.includes(b!.id));
    // Kill the connection whose completion statement waits for the lock.
    await eventually(async () => {
      const killed = await sql<{ k: boolean }>(
        `SELECT pg_terminate_backend(pid) AS k FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
      );
      return killed.length === 1;
    });
    await eventually(() => errors.length > 0);
    await lock!.release();
    // A's lease runs out, it runs again and completes.
    await eventually(() => ok.includes(a!.id), 10_000);
    await w.stop();
    expect(runs.get(0)).toBe(2);
    expect(runs.get(1)).toBe(1);
    expect(await count('q_overlap_kill')).toBe(0);
    expect(await count('a_overlap_kill')).toBe(2);
  });
});
