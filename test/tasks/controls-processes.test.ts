// Runtime controls with several real worker processes
// (fixtures/controls-worker.ts): pause/resume, rate limits over several
// windows, group concurrency N. Assertions read lease and run times that
// the database recorded, never this process's wall clock.
import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { defineTask } from '../../src/tasks/define.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { sleep, taskClient } from './helpers.js';

const db = useTestDatabase();
const script = fileURLToPath(new URL('./fixtures/controls-worker.ts', import.meta.url));

/** Starts a worker process in `mode`; resolves once it printed "ready"; SIGKILLed after the file. */
function workerProcess(mode: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  const p = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, DB_URL: db.url, QUEUE_SCHEMA: db.queueSchema, MODE: mode, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  db.track({
    close: async () => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      p.kill('SIGKILL');
      await new Promise((r) => p.once('exit', r));
    },
  });
  return new Promise((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => {
      if (d.toString().split('\n').includes('ready')) resolve(p);
    });
    p.once('exit', (code) => reject(new Error(`worker process exited early (${code})`)));
  });
}

const setup = () =>
  db.sql(`CREATE TABLE IF NOT EXISTS runs (id serial PRIMARY KEY, task text NOT NULL, i int NOT NULL,
            grp text, pid int NOT NULL, started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            ended_at timestamptz);
          CREATE TABLE IF NOT EXISTS group_probe (grp text PRIMARY KEY, cur int NOT NULL, peak int NOT NULL)`);

/** count(what) over the handlers' runs matching `where`. */
const count = async (where: string, params: unknown[] = [], what = '*'): Promise<number> =>
  (
    await db.sql<{ n: number }>(`SELECT count(${what})::int AS n FROM runs WHERE ${where}`, params)
  )[0]!.n;

/** Waits until `n` handlers of `task` have ended (recorded by the worker processes). */
const allEnded = (task: string, n: number): Promise<unknown> =>
  eventually(async () => (await count(`task = $1 AND ended_at IS NOT NULL`, [task])) >= n, 60_000);

/** Lease times (ms, database clock) of a task's `n` finished jobs, oldest first, with their rate key. */
async function leases(task: string, n: number): Promise<{ at: number; key: string }[]> {
  // A handler's end is recorded before its completion commits: wait for the archive.
  await eventually(
    async () =>
      (
        await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${db.queueSchema}.a_${task}`)
      )[0]!.n >= n,
    30_000,
  );
  const rows = await db.sql<{ at: string; key: string }>(
    `SELECT (extract(epoch FROM last_read_at) * 1000)::float8 AS at,
            coalesce(headers ->> 'x-pgferry-rate-key', '') AS key
       FROM ${db.queueSchema}.a_${task} ORDER BY last_read_at`,
  );
  return rows.map((r) => ({ at: Number(r.at), key: r.key }));
}

/** The most leases within any window of `periodMs` (sliding). */
function maxInWindow(times: number[], periodMs: number): number {
  let best = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= periodMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe('tasks: runtime controls across worker processes', () => {
  it('pause stops every process from leasing at once; buffered jobs are handed back; resume continues without a restart', async () => {
    await setup();
    const t = defineTask<{ i: number }>({ name: 'pause_t', handler: () => undefined });
    const client = taskClient(db);
    const procs = await Promise.all([
      workerProcess('pause', { CONCURRENCY: '2' }),
      workerProcess('pause', { CONCURRENCY: '2' }),
    ]);
    await client.enqueueBatch(
      t,
      Array.from({ length: 120 }, (_, i) => ({ input: { i } })),
    );
    await eventually(async () => (await count(`task = 'pause_t'`)) >= 12, 30_000);
    expect(await client.pause(t)).toBe(true);
    const [{ at: pausedAt }] = (await db.sql(`SELECT clock_timestamp() AS at`)) as [{ at: Date }];
    // Long enough for several poll intervals (200 ms) and the running jobs (100 ms) to end.
    await sleep(1500);
    const startedBy = await count(`task = 'pause_t'`);
    await sleep(1000);
    // Nothing started in the last second: every process stopped.
    expect(await count(`task = 'pause_t'`)).toBe(startedBy);
    // No lease at all after the pause committed (fetch returns nothing at once).
    const leasedAfter = await db.sql(
      `SELECT count(*)::int AS n FROM (SELECT last_read_at FROM ${db.queueSchema}.q_pause_t
         UNION ALL SELECT last_read_at FROM ${db.queueSchema}.a_pause_t) j WHERE last_read_at > $1`,
      [pausedAt],
    );
    expect(leasedAfter[0]!.n).toBe(0);
    // Buffered (leased, not started) jobs were handed back: none is held now.
    const held = await db.sql(
      `SELECT count(*)::int AS n FROM ${db.queueSchema}.q_pause_t WHERE vt > clock_timestamp()`,
    );
    expect(held[0]!.n).toBe(0);
    // Jobs running at the pause finished normally.
    expect(await count(`task = 'pause_t' AND ended_at IS NULL`)).toBe(0);
    expect(startedBy).toBeLessThan(120);

    expect(await client.resume(t)).toBe(true);
    await allEnded('pause_t', 120);
    const after = await count(`task = 'pause_t' AND started_at > $1`, [pausedAt], 'DISTINCT pid');
    expect(after).toBe(2); // both processes resumed by themselves
    expect(await count(`task = 'pause_t'`, [], 'DISTINCT i')).toBe(120);
    for (const p of procs) p.kill('SIGTERM');
  }, 120_000);

  it('a task rate limit holds over several windows with 3 processes, and throughput reaches it', async () => {
    await setup();
    const t = defineTask<{ i: number }>({
      name: 'rate_t',
      rateLimit: { limit: 5, periodMs: 500 },
      handler: () => undefined,
    });
    const client = taskClient(db);
    const procs = await Promise.all([
      workerProcess('rate'),
      workerProcess('rate'),
      workerProcess('rate'),
    ]);
    const jobs = 40;
    await client.enqueueBatch(
      t,
      Array.from({ length: jobs }, (_, i) => ({ input: { i } })),
    );
    await allEnded('rate_t', jobs);
    const ls = await leases('rate_t', 40);
    expect(ls.length).toBe(jobs);
    const times = ls.map((l) => l.at);
    expect(maxInWindow(times, 500)).toBeLessThanOrEqual(5);
    expect(maxInWindow(times, 500)).toBe(5); // the limit is reached
    // 40 jobs at 5 per 500 ms need at least 7 periods after the first lease;
    // with work waiting the workers keep up (woken when a slot frees).
    const span = times[times.length - 1]! - times[0]!;
    expect(span).toBeGreaterThanOrEqual(7 * 500 - 50);
    expect(span).toBeLessThan(7 * 500 * 2 + 1000);
    expect(await count(`task = 'rate_t'`, [], 'DISTINCT pid')).toBeGreaterThanOrEqual(2);
    for (const p of procs) p.kill('SIGTERM');
  }, 120_000);

  it('a per-key rate limit holds for each key, and one key does not hold back another', async () => {
    await setup();
    const t = defineTask<{ i: number }>({
      name: 'ratekey_t',
      rateLimit: { limit: 3, periodMs: 500, perKey: true },
      handler: () => undefined,
    });
    const client = taskClient(db);
    const procs = await Promise.all([workerProcess('ratekey'), workerProcess('ratekey')]);
    // Key a's 12 jobs first, then key b's 12: b must not wait for a.
    for (const key of ['a', 'b'])
      await client.enqueueBatch(
        t,
        Array.from({ length: 12 }, (_, i) => ({ input: { i }, options: { rateKey: key } })),
      );
    await allEnded('ratekey_t', 24);
    const ls = await leases('ratekey_t', 24);
    for (const key of ['a', 'b']) {
      const times = ls.filter((l) => l.key === key).map((l) => l.at);
      expect(times.length).toBe(12);
      expect(maxInWindow(times, 500)).toBeLessThanOrEqual(3);
      expect(maxInWindow(times, 500)).toBe(3);
    }
    // Both keys ran side by side: b's first lease came before a's last one.
    const firstB = ls.find((l) => l.key === 'b')!.at;
    const lastA = ls.filter((l) => l.key === 'a').at(-1)!.at;
    expect(firstB).toBeLessThan(lastA);
    for (const p of procs) p.kill('SIGTERM');
  }, 120_000);

  it('group concurrency 2: never more than 2 jobs of one group at once across processes, and 2 are reached', async () => {
    await setup();
    const t = defineTask<{ i: number; g: string }>({
      name: 'group_t',
      grouped: true,
      groupConcurrency: 2,
      handler: () => undefined,
    });
    const client = taskClient(db);
    const procs = await Promise.all([workerProcess('group'), workerProcess('group')]);
    const groups = ['x', 'y', 'z'];
    await client.enqueueBatch(
      t,
      Array.from({ length: 30 }, (_, i) => ({
        input: { i, g: groups[i % 3]! },
        options: { group: groups[i % 3]! },
      })),
    );
    await allEnded('group_t', 30);
    const probe = await db.sql<{ grp: string; peak: number }>(
      `SELECT grp, peak FROM group_probe ORDER BY grp`,
    );
    expect(probe.map((p) => p.grp)).toEqual(groups);
    for (const p of probe) expect(p.peak).toBeLessThanOrEqual(2);
    expect(Math.max(...probe.map((p) => p.peak))).toBe(2);
    // The same from the recorded intervals: at no job's start were 2 others of its group running.
    const overlaps = await db.sql(
      `SELECT r.id, count(o.id)::int AS n FROM runs r JOIN runs o
          ON o.task = r.task AND o.grp = r.grp AND o.id <> r.id
         AND o.started_at <= r.started_at AND o.ended_at > r.started_at
       WHERE r.task = 'group_t' GROUP BY r.id HAVING count(o.id) >= 2`,
    );
    expect(overlaps).toEqual([]);
    for (const p of procs) p.kill('SIGTERM');
  }, 120_000);
});
