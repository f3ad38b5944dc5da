import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import type { ChildResult } from '../../src/tasks/flows.js';
import { useTestDatabase } from '../support/db.js';
import { connections } from '../support/connections.js';
import { sleep, taskClient, worker } from './helpers.js';

// Fixes of sql/tasks/0007_flow_guard.sql.
const db = useTestDatabase();
const T = 'pgferry_tasks';

describe('tasks: a flow parent requeued from its dead-letter queue', () => {
  it('sees its children (ctx.childResults follows the requeue lineage, twice over)', async () => {
    const seen: { id: number; kids: ChildResult[] }[] = [];
    let failures = 2;
    const part = defineTask<{ n: number }>({ name: 'fg_part', handler: ({ n }) => n * 10 });
    const whole = defineTask<{ label: string }>({
      name: 'fg_whole',
      maxRetries: 0,
      handler: (_in, ctx) => {
        seen.push({ id: ctx.job.id, kids: ctx.childResults });
        if (failures-- > 0) throw new Error('not yet');
        return ctx.childResults.reduce((s, c) => s + (c.result as number), 0);
      },
    });
    const client = taskClient(db);
    const flow = await client.enqueueFlow({
      parent: { task: whole, input: { label: 'sum' } },
      children: [1, 2, 3].map((n) => ({ task: part, input: { n } })),
    });
    // A Worker runs once: one per round.
    const run = () => worker(db, { tasks: [part, whole] }).runUntilIdle();
    await run();
    const dl = client.deadLetters(whole);
    const first = await dl.requeue({ all: true });
    expect(first).toHaveLength(1);
    await run(); // dies again: a second requeue
    const second = await dl.requeue({ all: true });
    expect(second).toHaveLength(1);
    await run();
    expect(await client.waitForResult(whole, second[0]!.newId, { timeoutMs: 10_000 })).toBe(60);
    const ids = [flow.parent.id, first[0]!.newId, second[0]!.newId];
    expect(seen.map((s) => s.id)).toEqual(ids);
    for (const s of seen)
      expect(s.kids.map((k) => [k.id, k.state, k.result])).toEqual(
        flow.children.map((c, i) => [c.id, 'completed', (i + 1) * 10]),
      );
    // The same from outside the handler, by any id of the lineage.
    for (const id of ids) expect(await client.childResults(whole, id)).toEqual(seen[0]!.kids);
    const h = (await client.getJob(whole, second[0]!.newId))!.headers;
    expect(h['x-pgferry-flow']).toEqual({ onChildFailure: 'fail', parentId: flow.parent.id });
  });

  it('follows x-pgferry-rescheduled-from-msg-id through the archive for jobs requeued before migration 7', async () => {
    const part = defineTask<{ n: number }>({ name: 'fg_old_part', handler: ({ n }) => n });
    const whole = defineTask<{ n: number }>({ name: 'fg_old_whole', handler: () => undefined });
    const client = taskClient(db);
    const flow = await client.enqueueFlow({
      parent: { task: whole, input: { n: 0 } },
      children: [{ task: part, input: { n: 7 } }],
      onChildFailure: 'continue',
    });
    const w = worker(db, { tasks: [part] });
    await w.runUntilIdle();
    // As migration 1's reschedule_dead() left a requeued job: no parentId, one
    // step back in x-pgferry-rescheduled-from-msg-id (the dead job, archived).
    const [mid] = await db.sql<{ msg_id: string }>(
      `SELECT msg_id FROM ${T}.enqueue('fg_old_whole', '{"n":1}',
         '{"x-pgferry-flow":{"onChildFailure":"continue"}}'::jsonb || jsonb_build_object('x-pgferry-rescheduled-from-msg-id', $1::bigint),
         '9999-01-01')`,
      [flow.parent.id],
    );
    await db.sql(`SELECT ${T}.cancel('fg_old_whole', $1)`, [mid!.msg_id]); // archived
    const [last] = await db.sql<{ msg_id: string }>(
      `SELECT msg_id FROM ${T}.enqueue('fg_old_whole', '{"n":2}',
         '{"x-pgferry-flow":{"onChildFailure":"continue"}}'::jsonb || jsonb_build_object('x-pgferry-rescheduled-from-msg-id', $1::bigint),
         '9999-01-01')`,
      [mid!.msg_id],
    );
    const kids = await client.childResults(whole, Number(last!.msg_id));
    expect(kids.map((k) => [k.id, k.state, k.result])).toEqual([
      [flow.children[0]!.id, 'completed', 7],
    ]);
    // A job that is no flow parent has no children, whatever its headers say.
    const [plain] = await db.sql<{ msg_id: string }>(
      `SELECT msg_id FROM ${T}.enqueue('fg_old_whole', '{}',
         jsonb_build_object('x-pgferry-rescheduled-from-msg-id', $1::bigint), NULL)`,
      [flow.parent.id],
    );
    expect(await client.childResults(whole, Number(plain!.msg_id))).toEqual([]);
  });
});

describe('tasks: one lock order for a flow (flows row before the parent queue row)', () => {
  it.each(['bulk_cancel', 'bulk_delete'])(
    "%s of a parent and its child does not deadlock with a sibling dying under 'fail'",
    async (fn) => {
      const client = taskClient(db);
      const kid = defineTask<{ n: number }>({ name: `fg_${fn}_kid`, handler: () => undefined });
      const top = defineTask<{ n: number }>({ name: `fg_${fn}_top`, handler: () => undefined });
      // The parent and one child in one task (fg_lk_top), a sibling in another.
      const flow = await client.enqueueFlow({
        parent: { task: top, input: { n: 0 } },
        children: [
          { task: top, input: { n: 1 } },
          { task: kid, input: { n: 2 } },
        ],
      });
      const [leased] = await db.sql<{ msg_id: string; read_ct: number }>(
        `SELECT msg_id, read_ct FROM ${T}.fetch($1, 1, 60000, false, false, false, NULL)`,
        [kid.name],
      );
      // Pauses the dying sibling's session while it holds the flows row (a
      // BEFORE trigger runs with the row locked), so the bulk cancel's
      // statement runs in between: before the fix it held the parent's queue
      // row and waited for the flows row, the sibling then waited for the
      // parent's queue row.
      await db.sql(`CREATE OR REPLACE FUNCTION ${T}.fg_pause() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF current_setting('application_name') = 'fg_sibling' THEN PERFORM pg_advisory_xact_lock(4217); END IF;
        RETURN NEW;
      END $$`);
      await db.sql(
        `CREATE TRIGGER fg_pause BEFORE UPDATE ON ${T}.flows FOR EACH ROW EXECUTE FUNCTION ${T}.fg_pause()`,
      );
      const [gate, sibling, bulk] = await connections(db, 3);
      try {
        await gate!.query('SELECT pg_advisory_lock(4217)');
        await sibling!.query(`SET application_name = 'fg_sibling'`);
        for (const c of [sibling!, bulk!]) {
          await c.query(`SET deadlock_timeout = '100ms'`);
          await c.query(`SET lock_timeout = '20s'`);
        }
        const [sp, bp] = await Promise.all(
          [sibling!, bulk!].map(async (c) =>
            Number((await c.query('SELECT pg_backend_pid() p')).rows[0].p),
          ),
        );
        const waiting = async (pid: number) => {
          for (let i = 0; i < 400; i++) {
            const r = await db.sql<{ w: string | null }>(
              'SELECT wait_event_type w FROM pg_stat_activity WHERE pid = $1',
              [pid],
            );
            if (r[0]?.w === 'Lock') return;
            await sleep(25);
          }
          throw new Error(`session ${pid} never waited for a lock`);
        };
        const err = JSON.stringify({
          class: 'Error',
          name: 'Error',
          message: 'sibling broke',
          stack: null,
        });
        const dying = sibling!.query(`SELECT ${T}.dead_letter($4, $1, $2, $3::jsonb)`, [
          leased!.msg_id,
          leased!.read_ct,
          err,
          kid.name,
        ]);
        await waiting(sp!); // holds the flows row, paused
        const cancelling = bulk!.query(`SELECT ${T}.${fn}($1, '{queued,scheduled}')`, [top.name]);
        await waiting(bp!); // waits for the flows row
        await gate!.query('SELECT pg_advisory_unlock(4217)');
        const outcomes = await Promise.allSettled([dying, cancelling]);
        expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok'))).toEqual([
          'ok',
          'ok',
        ]);
      } finally {
        await db.sql(`DROP TRIGGER fg_pause ON ${T}.flows`);
      }
      // The sibling dead-lettered the parent; the bulk operation took the other
      // child, which counts as cancelled.
      expect((await client.getJob(top, flow.parent.id))!.state).toBe('dead');
      expect((await client.getJob(top, flow.children[0]!.id))?.state).toBe(
        fn === 'bulk_cancel' ? 'cancelled' : undefined,
      );
      expect((await client.childResults(top, flow.parent.id)).map((k) => k.state).sort()).toEqual([
        'cancelled',
        'dead',
      ]);
    },
  );
});
