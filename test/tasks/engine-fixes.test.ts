import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { TaskConfigError } from '../../src/tasks/errors.js';
import { JobNotFoundError } from '../../src/tasks/outcome-errors.js';
import type { TaskClient } from '../../src/tasks/client.js';
import { components } from '../../src/migrate/components.js';
import { expand, resolveSchemas } from '../../src/migrate/migrator.js';
import { useTestDatabase } from '../support/db.js';
import { connections } from '../support/connections.js';
import { taskClient } from './helpers.js';

// Fixes of sql/tasks/0005_review_fixes.sql, each driven through the SQL
// functions as a client in any language calls them.
const db = useTestDatabase();
const T = 'pgferry_tasks';
const noop = () => undefined;

async function lease(client: TaskClient, task: string) {
  const rows = await client.statements.fetch(
    client.driver,
    task,
    100,
    60_000,
    false,
    false,
    false,
    null,
  );
  return rows.map((r) => ({ id: Number(r.msg_id), rc: Number(r.read_ct) }));
}

describe('tasks: complete() of flow children (the SQL contract)', () => {
  it('a child completed with plain complete() releases its parent, archived or deleted', async () => {
    const part = defineTask<{ n: number }>({ name: 'fx_part', handler: noop });
    const whole = defineTask<{ n: number }>({ name: 'fx_whole', handler: noop });
    const client = taskClient(db);
    for (const archive of [true, false]) {
      const flow = await client.enqueueFlow({
        parent: { task: whole, input: { n: 0 } },
        children: [
          { task: part, input: { n: 1 } },
          { task: part, input: { n: 2 } },
        ],
      });
      // Another language's worker: fetch, then complete() with no results.
      const ls = await lease(client, 'fx_part');
      expect(ls.map((l) => l.id).sort()).toEqual(flow.children.map((c) => c.id).sort());
      const done = await db.sql<{ r: string }>(
        `SELECT r FROM ${T}.complete('fx_part', $1::bigint[], $2::integer[], $3) AS r`,
        [ls.map((l) => l.id), ls.map((l) => l.rc), archive],
      );
      expect(done.map((d) => Number(d.r)).sort()).toEqual(ls.map((l) => l.id).sort());
      expect((await lease(client, 'fx_whole')).map((l) => l.id)).toEqual([flow.parent.id]);
      const kids = await db.sql(`SELECT state FROM ${T}.flow_child_results('fx_whole', $1)`, [
        flow.parent.id,
      ]);
      expect(kids).toEqual([{ state: 'completed' }, { state: 'completed' }]);
    }
    // A stale read count completes nothing and counts nothing.
    const flow = await client.enqueueFlow({
      parent: { task: whole, input: { n: 9 } },
      children: [{ task: part, input: { n: 9 } }],
    });
    const [l] = await lease(client, 'fx_part');
    expect(
      await db.sql(
        `SELECT r FROM ${T}.complete('fx_part', ARRAY[$1::bigint], ARRAY[$2::int]) AS r`,
        [l!.id, l!.rc + 1],
      ),
    ).toEqual([]);
    const [f] = await db.sql(`SELECT pending FROM ${T}.flows WHERE parent_id = $1`, [
      flow.parent.id,
    ]);
    expect(f).toEqual({ pending: 1 });
  });
});

describe('tasks: prune() and the locks of fetch and enqueue', () => {
  it('does not wait for a rate bucket or key in use (it deadlocked with a fetch locking buckets in key order)', async () => {
    const rated = defineTask<{ n: number }>({
      name: 'fx_rated',
      rateLimit: { limit: 5, periodMs: 100, perKey: true },
      handler: noop,
    });
    const client = taskClient(db);
    await client.ensure(rated);
    // Two idle buckets, 'b' stored first (a DELETE in table order reaches it first),
    // and two expired debounce keys.
    await db.sql(
      `INSERT INTO ${T}.rate_buckets VALUES ('fx_rated', 'b', ARRAY[now() - interval '1 hour']),
                                            ('fx_rated', 'a', ARRAY[now() - interval '1 hour'])`,
    );
    await db.sql(
      `INSERT INTO ${T}.job_keys VALUES ('fx_rated', 'debounce', 'k2', NULL, now() - interval '1 hour'),
                                        ('fx_rated', 'debounce', 'k1', NULL, now() - interval '1 hour')`,
    );
    const [fetcher, pruner] = await connections(db, 2);
    // A fetch (or a transaction of debounced enqueues) holds 'a' and 'k1', and wants 'b' and 'k2' next.
    await fetcher!.query('BEGIN');
    await fetcher!.query(
      `SELECT 1 FROM ${T}.rate_buckets WHERE queue_name = 'fx_rated' AND rate_key = 'a' FOR UPDATE`,
    );
    await fetcher!.query(
      `SELECT 1 FROM ${T}.job_keys WHERE queue_name = 'fx_rated' AND key = 'k1' FOR UPDATE`,
    );
    // Before the fix prune() waited here for 'a' while holding 'b': a deadlock once the fetch asked for 'b'.
    await pruner!.query(`SET lock_timeout = '3s'`);
    await pruner!.query(`SELECT ${T}.prune('fx_rated', '1 day')`);
    const left = async () => ({
      buckets: (
        await db.sql<{ k: string }>(
          `SELECT rate_key AS k FROM ${T}.rate_buckets WHERE queue_name = 'fx_rated' ORDER BY 1`,
        )
      ).map((r) => r.k),
      keys: (
        await db.sql<{ k: string }>(
          `SELECT key AS k FROM ${T}.job_keys WHERE queue_name = 'fx_rated' ORDER BY 1`,
        )
      ).map((r) => r.k),
    });
    expect(await left()).toEqual({ buckets: ['a'], keys: ['k1'] });
    await fetcher!.query('COMMIT');
    // The next round takes what was in use.
    await client.prune(rated, { retentionMs: 86_400_000 });
    expect(await left()).toEqual({ buckets: [], keys: [] });
  });
});

describe('tasks: prune_results() and finishing children', () => {
  it("keeps a flow while a child is finishing (it deadlocked with the child's transaction), prunes it after", async () => {
    const part = defineTask<{ n: number }>({ name: 'fx_pr_part', handler: noop });
    const whole = defineTask<{ n: number }>({ name: 'fx_pr_whole', handler: noop });
    const client = taskClient(db);
    const flow = await client.enqueueFlow({
      parent: { task: whole, input: { n: 0 } },
      children: [{ task: part, input: { n: 1 } }],
      onChildFailure: 'continue',
    });
    // The parent leaves its queue first (cancelled); its child is still running.
    expect(await client.cancel(whole, flow.parent.id)).toBe('queued');
    const [l] = await lease(client, 'fx_pr_part');
    const [child, pruner] = await connections(db, 2);
    await child!.query('BEGIN');
    await child!.query(
      `SELECT ${T}.complete_results('fx_pr_part', ARRAY[$1::bigint], ARRAY[$2::int], ARRAY[NULL::jsonb])`,
      [l!.id, l!.rc],
    );
    await pruner!.query(`SET lock_timeout = '3s'`);
    await pruner!.query(`SELECT ${T}.prune_results('fx_pr_whole', '0', 1000)`);
    const flows = () =>
      db.sql(
        `SELECT pending FROM ${T}.flows WHERE parent_queue = 'fx_pr_whole' AND parent_id = $1`,
        [flow.parent.id],
      );
    expect(await flows()).toEqual([{ pending: 1 }]);
    await child!.query('COMMIT');
    expect(await flows()).toEqual([{ pending: 0 }]);
    await client.pruneResults(whole, { retentionMs: 0 });
    expect(await flows()).toEqual([]);
  });
});

describe('tasks: bulk delete and stored outcomes', () => {
  it("deleted jobs' results and errors go with them (job_result: unknown)", async () => {
    const t = defineTask<{ customer: number }>({ name: 'fx_bulk', handler: noop });
    const client = taskClient(db);
    const keep = await client.enqueue(t, { customer: 1 });
    const gone = await client.enqueue(t, { customer: 2 });
    const dead = await client.enqueue(t, { customer: 2 });
    const ls = await lease(client, 'fx_bulk');
    const rc = (id: number) => ls.find((l) => l.id === id)!.rc;
    await db.sql(
      `SELECT ${T}.complete_results('fx_bulk', ARRAY[$1::bigint, $2], ARRAY[$3::int, $4], ARRAY['{"secret":1}'::jsonb, '{"secret":2}'])`,
      [keep.id, gone.id, rc(keep.id), rc(gone.id)],
    );
    await db.sql(`SELECT ${T}.dead_letter('fx_bulk', $1, $2, '{"message":"boom"}')`, [
      dead.id,
      rc(dead.id),
    ]);
    const queued = await client.enqueue(t, { customer: 2 });
    expect(
      await client.deleteJobs(t, {
        state: ['completed', 'dead', 'queued'],
        payload: { customer: 2 },
      }),
    ).toBe(3);
    for (const id of [gone.id, dead.id, queued.id]) {
      expect((await client.result(t, id)).state).toBe('unknown');
      await expect(client.waitForResult(t, id)).rejects.toBeInstanceOf(JobNotFoundError);
    }
    expect(await client.result(t, keep.id)).toMatchObject({
      state: 'completed',
      result: { secret: 1 },
    });
  });
});

describe('tasks: unique and debounce beside an idempotency key', () => {
  it('refuse an idempotency key in the headers (PF301, TaskConfigError), leaving no key and no job', async () => {
    const t = defineTask<{ n: number }>({ name: 'fx_keys', handler: noop });
    const client = taskClient(db);
    const first = await client.enqueue(t, { n: 1 }, { idempotencyKey: 'idem' });
    const headers = { 'x-pgferry-idempotency-key': 'idem' };
    // Before: a bare unique violation (23505) once the window's key was claimed.
    await expect(
      client.enqueue(t, { n: 2 }, { headers, unique: { key: 'u', windowMs: 60_000 } }),
    ).rejects.toBeInstanceOf(TaskConfigError);
    await expect(
      client.enqueue(t, { n: 3 }, { headers, debounce: { key: 'd', windowMs: 60_000 } }),
    ).rejects.toBeInstanceOf(TaskConfigError);
    await expect(
      db.sql(
        `SELECT * FROM ${T}.enqueue_unique('fx_keys', '{}', 'u', 1000, '{"x-pgferry-idempotency-key":"other"}')`,
      ),
    ).rejects.toMatchObject({ code: 'PF301' });
    expect(await db.sql(`SELECT key FROM ${T}.job_keys WHERE queue_name = 'fx_keys'`)).toEqual([]);
    const jobs = await db.sql<{ msg_id: string }>(`SELECT msg_id FROM ${db.queueSchema}.q_fx_keys`);
    expect(jobs.map((j) => Number(j.msg_id))).toEqual([first.id]);
    // Without the idempotency header both still work.
    const u = await client.enqueue(t, { n: 4 }, { unique: { key: 'u', windowMs: 60_000 } });
    expect(u.duplicate).toBe(false);
  });
});

describe('tasks: idle() of a rate-limited task', () => {
  it('asks to be woken when a slot frees only while a job waits for it', async () => {
    const t = defineTask<{ n: number }>({
      name: 'fx_idle',
      rateLimit: { limit: 2, periodMs: 60_000 },
      handler: noop,
    });
    const client = taskClient(db);
    await client.ensure(t);
    await client.enqueue(t, { n: 1 });
    const ls = await lease(client, 'fx_idle');
    await db.sql(`SELECT ${T}.complete('fx_idle', $1::bigint[], $2::integer[])`, [
      ls.map((l) => l.id),
      ls.map((l) => l.rc),
    ]);
    // Nothing to run: no wake-up when the logged start leaves the period (it woke for each before).
    const [none] = await db.sql(`SELECT ${T}.idle('fx_idle') AS r`);
    expect(none!.r).toBeNull();
    // Jobs held back by the limit: woken when the oldest start leaves the period.
    await client.enqueueBatch(t, [{ input: { n: 2 } }, { input: { n: 3 } }]);
    expect(await lease(client, 'fx_idle')).toHaveLength(1);
    const [slot] = await db.sql<{ r: Date; first: Date }>(
      `SELECT ${T}.idle('fx_idle') AS r, (SELECT starts[1] FROM ${T}.rate_buckets
         WHERE queue_name = 'fx_idle') + interval '60 seconds' AS first`,
    );
    expect(slot!.r).toEqual(slot!.first);
  });
});

describe('tasks: rate limit bounds', () => {
  it('refuses a limit over 10,000 per period, in defineTask and in configure_task, changing nothing', async () => {
    expect(() =>
      defineTask({
        name: 'fx_huge',
        rateLimit: { limit: 10_001, periodMs: 3_600_000 },
        handler: noop,
      }),
    ).toThrow(InvalidArgumentError);
    const ok = defineTask({
      name: 'fx_huge',
      rateLimit: { limit: 10_000, periodMs: 3_600_000 },
      handler: noop,
    });
    const client = taskClient(db);
    await client.ensure(ok);
    await expect(
      db.sql(`SELECT ${T}.configure_task('fx_huge', 1, 1000000, 3600000, false)`),
    ).rejects.toMatchObject({ code: 'PF301' });
    const [row] = await db.sql(
      `SELECT rate_limit, rate_period_ms FROM ${T}.ops_tasks() WHERE queue_name = 'fx_huge'`,
    );
    expect(row).toEqual({ rate_limit: 10_000, rate_period_ms: 3_600_000 });
  });
});

describe('tasks: upgrading a database at migration 2', () => {
  it('keeps jobs, archived jobs and grants through migrations 3 to 5, and the jobs work after', async () => {
    const schema = 'tasks_up5';
    const schemas = resolveSchemas({ queue: db.queueSchema, tasks: schema });
    const ms = components.tasks.migrations;
    expect(ms.length).toBeGreaterThanOrEqual(5);
    await db.sql(`CREATE SCHEMA ${schema}`);
    for (const m of ms.slice(0, 2)) await db.sql(expand(m.sql, schema, schemas));
    await db.sql(`DROP ROLE IF EXISTS pf_worker_up5; CREATE ROLE pf_worker_up5 NOLOGIN;
                  GRANT EXECUTE ON FUNCTION ${schema}.complete(text, bigint[], integer[], boolean, boolean, boolean),
                    ${schema}.prune(text, interval, integer), ${schema}.ops_tasks() TO pf_worker_up5`);
    await db.sql(`SELECT ${schema}.ensure_task('fx_up', true, true)`);
    await db.sql(
      `SELECT ${schema}.enqueue('fx_up', jsonb_build_object('i', i)) FROM generate_series(1, 3) i`,
    );
    const [first] = await db.sql<{ msg_id: string; read_ct: number }>(
      `SELECT msg_id, read_ct FROM ${schema}.fetch('fx_up', 1, 60000, false, true, true)`,
    );
    await db.sql(`SELECT ${schema}.complete('fx_up', ARRAY[$1::bigint], ARRAY[$2::int])`, [
      first!.msg_id,
      first!.read_ct,
    ]);
    for (const m of ms.slice(2, 5))
      await db.sql(`BEGIN; ${expand(m.sql, schema, schemas)}; COMMIT`);
    // Grants kept on replaced and recreated functions; PUBLIC has none of the new ones.
    const [g] = await db.sql(
      `SELECT has_function_privilege('pf_worker_up5', '${schema}.complete(text, bigint[], integer[], boolean, boolean, boolean)', 'EXECUTE') AS complete,
              has_function_privilege('pf_worker_up5', '${schema}.prune(text, interval, integer)', 'EXECUTE') AS prune,
              has_function_privilege('pf_worker_up5', '${schema}.ops_tasks()', 'EXECUTE') AS ops,
              has_function_privilege('public', '${schema}.job_result(text, bigint)', 'EXECUTE') AS everyone`,
    );
    expect(g).toEqual({ complete: true, prune: true, ops: true, everyone: false });
    const [reg] = await db.sql(`SELECT * FROM ${schema}.ops_tasks()`);
    expect(reg).toMatchObject({
      queue_name: 'fx_up',
      grouped: true,
      by_priority: true,
      paused: false,
    });
    // The job archived before the upgrade reads as completed; the queued ones run.
    const [r] = await db.sql(`SELECT state FROM ${schema}.job_result('fx_up', $1)`, [
      first!.msg_id,
    ]);
    expect(r).toEqual({ state: 'completed' });
    const rest = await db.sql<{ msg_id: string; read_ct: number }>(
      `SELECT msg_id, read_ct FROM ${schema}.fetch('fx_up', 10, 60000, false, false, true)`,
    );
    expect(rest).toHaveLength(2);
    const done = await db.sql(`SELECT ${schema}.complete('fx_up', $1::bigint[], $2::integer[])`, [
      rest.map((x) => x.msg_id),
      rest.map((x) => x.read_ct),
    ]);
    expect(done).toHaveLength(2);
    await db.sql(`DROP SCHEMA ${schema} CASCADE; DROP ROLE pf_worker_up5`);
    await db
      .sql(`SELECT ${db.queueSchema}.drop_queue(q) FROM unnest(ARRAY['fx_up', 'fx_up_dlq']) q`)
      .catch(() => undefined);
  });
});
