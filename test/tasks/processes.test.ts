import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { defineTask } from '../../src/tasks/define.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, workerProcess } from './helpers.js';

const db = useTestDatabase();
const script = fileURLToPath(new URL('./fixtures/child-worker.ts', import.meta.url));

const child = (env: Record<string, string>, onLine?: (line: string) => void) =>
  workerProcess(db, script, env, onLine);

describe('tasks: several processes', () => {
  it('holds a queue-wide concurrency limit under 4 workers in 2 processes', async () => {
    await db.sql(`CREATE TABLE limit_probe (cur int NOT NULL, peak int NOT NULL); INSERT INTO limit_probe VALUES (0, 0);
                  CREATE TABLE limit_done (i int PRIMARY KEY, pid int NOT NULL)`);
    const t = defineTask<{ i: number }>({
      name: 'limited',
      concurrencyLimit: 3,
      handler: () => undefined,
    });
    const client = taskClient(db);
    // Both processes are up before the jobs arrive, so both get to compete.
    const procs = await Promise.all([
      child({ MODE: 'limit', WORKERS: '2' }),
      child({ MODE: 'limit', WORKERS: '2' }),
    ]);
    await client.enqueueBatch(
      t,
      Array.from({ length: 60 }, (_, i) => ({ input: { i } })),
    );
    await eventually(
      async () => (await db.sql(`SELECT count(*)::int AS n FROM limit_done`))[0]!.n === 60,
      30_000,
    );
    const [probe] = await db.sql(`SELECT cur, peak FROM limit_probe`);
    // Never more than the limit (without it, 4 workers × 4 slots would run 16
    // at once); and the limit was actually reached.
    expect(probe!.peak).toBeLessThanOrEqual(3);
    expect(probe!.peak).toBeGreaterThanOrEqual(2);
    const pids = await db.sql(`SELECT DISTINCT pid FROM limit_done`);
    expect(pids.length).toBe(2); // both processes did work
    for (const p of procs) p.kill('SIGTERM');
  });

  it('a worker killed with SIGKILL mid-job: the job runs again after its lease and completes exactly once', async () => {
    await db.sql(`CREATE TABLE crash_runs (i int, pid int, attempt int, at timestamptz NOT NULL DEFAULT clock_timestamp());
                  CREATE TABLE crash_done (i int PRIMARY KEY, pid int NOT NULL)`);
    const t = defineTask<{ i: number }>({
      name: 'crashy',
      timeoutMs: 1000,
      maxRetries: 2,
      handler: () => undefined,
    });
    const client = taskClient(db);
    await client.ensure(t);
    let startedId = 0;
    const victim = await child({ MODE: 'crash', HANG: '1', CONCURRENCY: '1' }, (line) => {
      if (line.startsWith('started ')) startedId = Number(line.slice(8));
    });
    const job = await client.enqueue(t, { i: 1 });
    await eventually(() => startedId === job.id, 10_000);
    const killedAt = Date.now();
    victim.kill('SIGKILL');
    await new Promise((r) => victim.once('exit', r));
    expect((await client.getJob(t, job.id))!.state).toBe('running'); // its lease still holds
    const rescuer = await child({ MODE: 'crash', CONCURRENCY: '1' });
    await eventually(async () => (await client.getJob(t, job.id))?.state === 'completed', 15_000);
    // Not before the dead worker's lease (timeout 1000 + margin 500) ran out.
    const runs = await db.sql<{ pid: number; attempt: number; ms: number }>(
      `SELECT pid, attempt, (extract(epoch FROM at - min(at) OVER ()) * 1000)::int AS ms FROM crash_runs ORDER BY attempt`,
    );
    expect(runs.map((r) => r.attempt)).toEqual([1, 2]);
    expect(runs[0]!.pid).toBe(victim.pid);
    expect(runs[1]!.pid).toBe(rescuer.pid);
    expect(runs[1]!.ms).toBeGreaterThanOrEqual(1400);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    const done = await db.sql(`SELECT pid FROM crash_done`);
    expect(done).toEqual([{ pid: rescuer.pid }]);
    rescuer.kill('SIGTERM');
  });
});
