import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { TaskConfigError } from '../../src/tasks/errors.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { components } from '../../src/migrate/components.js';
import { expand, resolveSchemas } from '../../src/migrate/migrator.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { sleep, taskClient, worker } from './helpers.js';

const db = useTestDatabase();
const T = 'pgferry_tasks';

/** Leases through the SQL function, as any language would. */
async function fetchIds(task: string, qty = 100, grouped = false): Promise<number[]> {
  const rows = await db.sql<{ msg_id: string }>(
    `SELECT msg_id FROM ${T}.fetch($1, $2, 60000, false, $3, false, NULL)`,
    [task, qty, grouped],
  );
  return rows.map((r) => Number(r.msg_id)).sort((a, b) => a - b);
}

describe('tasks: pause and resume (SQL and client)', () => {
  it('a paused task leases nothing; resume lets fetch lease again; the listing shows it', async () => {
    const t = defineTask<{ i: number }>({ name: 'pausable', handler: () => undefined });
    const client = taskClient(db);
    await client.ensure(t);
    await client.enqueueBatch(t, [{ input: { i: 1 } }, { input: { i: 2 } }]);
    expect(await client.pause(t)).toBe(true);
    expect(await client.pause('pausable')).toBe(false); // already paused
    expect(await client.isPaused(t)).toBe(true);
    expect(await fetchIds('pausable')).toEqual([]);
    const [row] = await db.sql(`SELECT paused FROM ${T}.ops_tasks() WHERE queue_name = 'pausable'`);
    expect(row!.paused).toBe(true);
    // idle() of a paused task: sleep until resume (NULL), without asking inserts to notify.
    const [idle] = await db.sql(`SELECT ${T}.idle('pausable') AS r`);
    expect(idle!.r).toBeNull();
    expect(await client.resume(t)).toBe(true);
    expect(await client.resume(t)).toBe(false);
    expect((await fetchIds('pausable')).length).toBe(2);
    await expect(client.pause('never_registered')).rejects.toBeInstanceOf(TaskConfigError);
    await expect(client.pause('bad name!')).rejects.toBeInstanceOf(TaskConfigError);
  });
});

describe('tasks: pause and resume with a worker', () => {
  it('hands buffered jobs back on pause, lets the running one finish, and resume wakes a sleeping worker', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const ran: number[] = [];
    const t = defineTask<{ i: number }>({
      name: 'pause_worker',
      handler: async ({ i }) => {
        ran.push(i);
        if (i === 0) await gate;
      },
    });
    const client = taskClient(db);
    // A poll interval far longer than the test: only resume()'s notification can wake it.
    const w = worker(db, { tasks: [t], concurrency: 1, batchSize: 10, pollIntervalMs: 60_000 });
    await w.start();
    const jobs = await client.enqueueBatch(
      t,
      Array.from({ length: 6 }, (_, i) => ({ input: { i } })),
    );
    await eventually(() => ran.length === 1);
    const leased = () =>
      db.sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${db.queueSchema}.q_pause_worker WHERE vt > clock_timestamp()`,
      );
    expect((await leased())[0]!.n).toBe(6); // one running, five in the worker's buffer
    await client.pause(t);
    await eventually(async () => (await leased())[0]!.n === 1); // the buffer went back
    const back = await db.sql(
      `SELECT count(*)::int AS n FROM ${db.queueSchema}.q_pause_worker WHERE read_ct = 0`,
    );
    expect(back[0]!.n).toBe(5); // handed back: the attempt is not counted
    release();
    await eventually(async () => (await client.getJob(t, jobs[0]!.id))?.state === 'completed');
    await sleep(300);
    expect(ran).toEqual([0]); // the running job finished; nothing else started
    await client.resume(t);
    await eventually(() => ran.length === 6, 10_000);
    expect(ran.sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe('tasks: group concurrency', () => {
  it('leases up to N jobs of each group, in order, and the next only when one finishes', async () => {
    expect(() =>
      defineTask({ name: 'g_bad', groupConcurrency: 2, handler: () => undefined }),
    ).toThrow(TaskConfigError);
    expect(() =>
      defineTask({ name: 'g_bad', grouped: true, groupConcurrency: 0, handler: () => undefined }),
    ).toThrow(InvalidArgumentError);
    const t = defineTask<{ i: number }>({
      name: 'grouped3',
      grouped: true,
      groupConcurrency: 3,
      handler: () => undefined,
    });
    const client = taskClient(db);
    await client.ensure(t);
    const a = await client.enqueueBatch(
      t,
      Array.from({ length: 5 }, (_, i) => ({ input: { i }, options: { group: 'a' } })),
    );
    const b = await client.enqueueBatch(
      t,
      Array.from({ length: 2 }, (_, i) => ({ input: { i }, options: { group: 'b' } })),
    );
    const first = await fetchIds('grouped3', 100, true);
    expect(first).toEqual([...a.slice(0, 3), ...b].map((j) => j.id));
    expect(await fetchIds('grouped3', 100, true)).toEqual([]);
    // Finishing one job of group a admits the fourth.
    const [row] = await db.sql<{ read_ct: number }>(
      `SELECT read_ct FROM ${db.queueSchema}.q_grouped3 WHERE msg_id = $1`,
      [a[0]!.id],
    );
    await client.statements.complete(client.driver, 'grouped3', [a[0]!.id], [row!.read_ct], true);
    expect(await fetchIds('grouped3', 100, true)).toEqual([a[3]!.id]);
    const [reg] = await db.sql(
      `SELECT group_concurrency FROM ${T}.ops_tasks() WHERE queue_name = 'grouped3'`,
    );
    expect(reg!.group_concurrency).toBe(3);
  });
});

describe('tasks: rate limits in fetch', () => {
  it('leases at most N per period for the task, then N more once the period has passed', async () => {
    const t = defineTask<{ i: number }>({
      name: 'rated',
      rateLimit: { limit: 4, periodMs: 1500 },
      handler: () => undefined,
    });
    const client = taskClient(db);
    await client.ensure(t);
    await client.enqueueBatch(
      t,
      Array.from({ length: 10 }, (_, i) => ({ input: { i } })),
    );
    expect((await fetchIds('rated', 3)).length).toBe(3);
    expect((await fetchIds('rated')).length).toBe(1);
    expect((await fetchIds('rated')).length).toBe(0);
    // idle() says when the next slot frees (about one period after the first lease).
    const [idle] = await db.sql<{ ms: number }>(
      `SELECT extract(epoch FROM ${T}.idle('rated') - clock_timestamp()) * 1000 AS ms`,
    );
    expect(Number(idle!.ms)).toBeGreaterThan(0);
    expect(Number(idle!.ms)).toBeLessThanOrEqual(1500);
    await sleep(Number(idle!.ms) + 50);
    expect((await fetchIds('rated')).length).toBe(4);
  });

  it('per key: each rate key has its own budget, and a full key does not starve the others', async () => {
    const t = defineTask<{ i: number }>({
      name: 'rated_keys',
      rateLimit: { limit: 2, periodMs: 60_000, perKey: true },
      handler: () => undefined,
    });
    const client = taskClient(db);
    await client.ensure(t);
    // Six jobs of key a first, then three of b and three without a key.
    for (const [key, n] of [
      ['a', 6],
      ['b', 3],
      [undefined, 3],
    ] as const)
      await client.enqueueBatch(
        t,
        Array.from({ length: n }, (_, i) => ({
          input: { i },
          options: key ? { rateKey: key } : {},
        })),
      );
    const got = await fetchIds('rated_keys', 2);
    expect(got.length).toBe(2); // two of a
    const more = await fetchIds('rated_keys', 100);
    expect(more.length).toBe(4); // a is full: two of b, two without a key
    expect(await fetchIds('rated_keys', 100)).toEqual([]);
    const keys = await db.sql(
      `SELECT rate_key, cardinality(starts) AS n FROM ${T}.rate_buckets WHERE queue_name = 'rated_keys' ORDER BY 1`,
    );
    expect(keys).toEqual([
      { rate_key: '', n: 2 },
      { rate_key: 'a', n: 2 },
      { rate_key: 'b', n: 2 },
    ]);
    const plain = defineTask({ name: 'plain_rk', handler: () => undefined });
    await expect(client.enqueue(plain, {}, { rateKey: 'x' })).rejects.toBeInstanceOf(
      TaskConfigError,
    );
    await expect(client.enqueue(t, { i: 0 }, { rateKey: '' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(() =>
      defineTask({ name: 'r_bad', rateLimit: { limit: 0, periodMs: 1 }, handler: () => 0 }),
    ).toThrow(InvalidArgumentError);
  });

  it('combines with group concurrency: at most N per group and at most the limit in all', async () => {
    const t = defineTask<{ i: number }>({
      name: 'rated_groups',
      grouped: true,
      groupConcurrency: 2,
      rateLimit: { limit: 3, periodMs: 60_000 },
      handler: () => undefined,
    });
    const client = taskClient(db);
    await client.ensure(t);
    for (const group of ['a', 'b'])
      await client.enqueueBatch(
        t,
        Array.from({ length: 3 }, (_, i) => ({ input: { i }, options: { group } })),
      );
    const got = await db.sql<{ g: string }>(
      `SELECT headers ->> 'x-pgmq-group' AS g
         FROM ${T}.fetch('rated_groups', 100, 60000, false, true, false, NULL)`,
    );
    expect(got.length).toBe(3);
    expect(got.filter((r) => r.g === 'a').length).toBeLessThanOrEqual(2);
    expect(got.filter((r) => r.g === 'b').length).toBeLessThanOrEqual(2);
    expect(await fetchIds('rated_groups', 100, true)).toEqual([]);
  });

  it('a definition without a rate limit clears it from the registry (ensure writes the controls)', async () => {
    const client = taskClient(db);
    await client.ensure(
      defineTask({ name: 'rated_off', rateLimit: { limit: 1, periodMs: 1000 }, handler: () => 0 }),
    );
    await client.ensure(defineTask({ name: 'rated_off', handler: () => 0 }));
    const [reg] = await db.sql(
      `SELECT rate_limit FROM ${T}.ops_tasks() WHERE queue_name = 'rated_off'`,
    );
    expect(reg!.rate_limit).toBeNull();
    await expect(
      db.sql(`SELECT ${T}.configure_task('rated_off', 1, 5, NULL, false)`),
    ).rejects.toThrow(/rate_limit and rate_period_ms/);
  });
});

describe('tasks: unique and debounced enqueues', () => {
  it('unique: the first job is returned within the window, even after it finished; a new one after', async () => {
    const t = defineTask<{ i: number }>({ name: 'uniq', handler: () => undefined });
    const client = taskClient(db);
    const first = await client.enqueue(t, { i: 1 }, { unique: { key: 'k', windowMs: 800 } });
    expect(first.duplicate).toBe(false);
    // Finish it: the key still holds.
    const ids = await fetchIds('uniq');
    await client.statements.complete(client.driver, 'uniq', ids, [1], true);
    expect((await client.getJob(t, first.id))!.state).toBe('completed');
    const again = await client.enqueue(t, { i: 2 }, { unique: { key: 'k', windowMs: 800 } });
    expect(again).toEqual({ id: first.id, task: 'uniq', duplicate: true });
    // Concurrent enqueues of a new key: exactly one job.
    const many = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        client.enqueue(t, { i }, { unique: { key: 'race', windowMs: 60_000 } }),
      ),
    );
    expect(new Set(many.map((m) => m.id)).size).toBe(1);
    expect(many.filter((m) => !m.duplicate).length).toBe(1);
    await sleep(900);
    const later = await client.enqueue(t, { i: 3 }, { unique: { key: 'k', windowMs: 800 } });
    expect(later.duplicate).toBe(false);
    expect(later.id).not.toBe(first.id);
    // From SQL, with the same semantics.
    const [sqlRow] = await db.sql(`SELECT * FROM ${T}.enqueue_unique('uniq', '{"i":4}', 'k', 800)`);
    expect(Number(sqlRow!.msg_id)).toBe(later.id);
    expect(sqlRow!.duplicate).toBe(true);
    // Expired keys are pruned.
    await sleep(900);
    await client.prune(t, { retentionMs: 3_600_000 });
    const keys = await db.sql(
      `SELECT key FROM ${T}.job_keys WHERE queue_name = 'uniq' ORDER BY key`,
    );
    expect(keys).toEqual([{ key: 'race' }]);
  });

  it('debounce: an enqueue within the window replaces the pending input and pushes the run time', async () => {
    const t = defineTask<{ v: number }>({ name: 'debounced', handler: () => undefined });
    const client = taskClient(db);
    const a = await client.enqueue(t, { v: 1 }, { debounce: { key: 'doc-1', windowMs: 1000 } });
    const runAt1 = (await client.getJob(t, a.id))!.runAt.getTime();
    await sleep(100);
    const b = await client.enqueue(t, { v: 2 }, { debounce: { key: 'doc-1', windowMs: 1000 } });
    expect(b).toEqual({ id: a.id, task: 'debounced', duplicate: true });
    const job = (await client.getJob(t, a.id))!;
    expect(job.input).toEqual({ v: 2 });
    expect(job.state).toBe('scheduled');
    expect(job.runAt.getTime()).toBeGreaterThan(runAt1 + 50);
    // Another key is another job.
    const other = await client.enqueue(t, { v: 9 }, { debounce: { key: 'doc-2', windowMs: 1000 } });
    expect(other.id).not.toBe(a.id);
    // Once the job has started, the next enqueue makes a new job.
    await db.sql(
      `UPDATE ${db.queueSchema}.q_debounced SET vt = clock_timestamp() WHERE msg_id = $1`,
      [a.id],
    );
    expect(await fetchIds('debounced', 1)).toEqual([a.id]);
    const c = await client.enqueue(t, { v: 3 }, { debounce: { key: 'doc-1', windowMs: 1000 } });
    expect(c.duplicate).toBe(false);
    expect(c.id).not.toBe(a.id);
  });

  it('refuses conflicting options with typed errors, before anything is sent', async () => {
    const t = defineTask<{ v: number }>({ name: 'uniq_bad', handler: () => undefined });
    const client = taskClient(db);
    const w = { key: 'k', windowMs: 10 };
    await expect(client.enqueue(t, { v: 1 }, { unique: w, debounce: w })).rejects.toBeInstanceOf(
      TaskConfigError,
    );
    await expect(
      client.enqueue(t, { v: 1 }, { unique: w, idempotencyKey: 'x' }),
    ).rejects.toBeInstanceOf(TaskConfigError);
    await expect(client.enqueue(t, { v: 1 }, { debounce: w, delayMs: 5 })).rejects.toBeInstanceOf(
      TaskConfigError,
    );
    await expect(
      client.enqueue(t, { v: 1 }, { unique: { key: 'k', windowMs: 0 } }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      client.enqueue(t, { v: 1 }, { unique: { key: '', windowMs: 5 } }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      client.enqueueBatch(t, [{ input: { v: 1 }, options: { unique: w } }]),
    ).rejects.toBeInstanceOf(TaskConfigError);
    const rows = await db
      .sql(`SELECT count(*)::int AS n FROM ${db.queueSchema}.q_uniq_bad`)
      .catch(() => [{ n: 0 }]);
    expect(rows[0]!.n).toBe(0);
  });
});

describe('tasks: bulk operations by filter', () => {
  it('retries dead and retrying jobs, cancels and deletes by payload containment, returns counts', async () => {
    const t = defineTask<{ customer: number; n: number }>({
      name: 'bulky',
      handler: () => undefined,
    });
    const client = taskClient(db);
    const jobs = await client.enqueueBatch(
      t,
      Array.from({ length: 6 }, (_, n) => ({
        input: { customer: n % 2, n },
        options: { delayMs: 60_000 },
      })),
    );
    // Cancel the scheduled jobs of customer 1.
    expect(await client.cancelJobs(t, { state: 'scheduled', payload: { customer: 1 } })).toBe(3);
    const states = await Promise.all(jobs.map(async (j) => (await client.getJob(t, j.id))!.state));
    expect(states).toEqual([
      'scheduled',
      'cancelled',
      'scheduled',
      'cancelled',
      'scheduled',
      'cancelled',
    ]);
    // Make two of customer 0 fail: one retrying, one dead.
    await db.sql(
      `UPDATE ${db.queueSchema}.q_bulky SET vt = clock_timestamp() WHERE msg_id = ANY($1)`,
      [[jobs[0]!.id, jobs[2]!.id]],
    );
    const leased = await fetchIds('bulky');
    expect(leased).toEqual([jobs[0]!.id, jobs[2]!.id]);
    await client.statements.retry(client.driver, 'bulky', jobs[0]!.id, 1, 60_000, '{"name":"E"}');
    await client.statements.deadLetter(client.driver, 'bulky', jobs[2]!.id, 1, '{"name":"E"}');
    expect((await client.getJob(t, jobs[0]!.id))!.state).toBe('retrying');
    expect(await client.retryJobs(t, { payload: { customer: 0 } })).toBe(2);
    expect((await client.getJob(t, jobs[0]!.id))!.state).toBe('queued');
    expect(await client.deadLetters(t).count()).toBe(0);
    const requeued = await db.sql(
      `SELECT count(*)::int AS n FROM ${db.queueSchema}.q_bulky WHERE message @> '{"n":2}'`,
    );
    expect(requeued[0]!.n).toBe(1);
    // Delete the cancelled ones for good.
    expect(await client.deleteJobs(t, { state: ['cancelled'] })).toBe(3);
    expect(await client.getJob(t, jobs[1]!.id)).toBeNull();
    // From SQL.
    const [n] = await db.sql(
      `SELECT ${T}.bulk_cancel('bulky', '{queued,scheduled}', '{"customer":0}') AS r`,
    );
    expect(Number(n!.r)).toBe(3);
    // Bad filters: typed errors, nothing changed.
    await expect(client.deleteJobs(t, {})).rejects.toBeInstanceOf(TaskConfigError);
    await expect(client.cancelJobs(t, { state: 'completed' })).rejects.toBeInstanceOf(
      TaskConfigError,
    );
    await expect(client.retryJobs(t, { state: 'queued' })).rejects.toBeInstanceOf(TaskConfigError);
    await expect(client.retryJobs(t, { payload: [1] as never })).rejects.toBeInstanceOf(
      TaskConfigError,
    );
    await expect(client.cancelJobs(t, { stat: 'queued' } as never)).rejects.toBeInstanceOf(
      TaskConfigError,
    );
    await expect(db.sql(`SELECT ${T}.bulk_delete('bulky', '{nope}')`)).rejects.toThrow(
      /states must be/,
    );
    await expect(client.deleteJobs(t, { state: [] })).rejects.toBeInstanceOf(TaskConfigError);
    expect(await client.deleteJobs(t, { state: ['cancelled'] })).toBe(3);
  });
});

describe('tasks migration 3', () => {
  it("keeps the EXECUTE grants an administrator gave on ops_tasks() (recreated with the controls' columns)", async () => {
    const schema = 'tasks_upgrade';
    const schemas = resolveSchemas({ queue: db.queueSchema, tasks: schema });
    const [m1, m2, m3] = components.tasks.migrations;
    await db.sql(`CREATE SCHEMA ${schema}`);
    await db.sql(expand(m1!.sql, schema, schemas));
    await db.sql(expand(m2!.sql, schema, schemas));
    await db.sql(`DROP ROLE IF EXISTS pf_monitor_upgrade; CREATE ROLE pf_monitor_upgrade NOLOGIN;
                  GRANT EXECUTE ON FUNCTION ${schema}.ops_tasks() TO pf_monitor_upgrade`);
    await db.sql(`BEGIN; ${expand(m3!.sql, schema, schemas)}; COMMIT`);
    const [r] = await db.sql(
      `SELECT has_function_privilege('pf_monitor_upgrade', '${schema}.ops_tasks()', 'EXECUTE') AS monitor,
              has_function_privilege('public', '${schema}.ops_tasks()', 'EXECUTE') AS everyone`,
    );
    expect(r).toEqual({ monitor: true, everyone: false });
    const cols = await db.sql(`SELECT * FROM ${schema}.ops_tasks()`);
    expect(cols).toEqual([]);
    await db.sql(`DROP SCHEMA ${schema} CASCADE; DROP ROLE pf_monitor_upgrade`);
  });
});
