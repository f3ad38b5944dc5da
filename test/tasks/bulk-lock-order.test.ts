import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { useTestDatabase } from '../support/db.js';
import { connections } from '../support/connections.js';
import { sleep, taskClient } from './helpers.js';

// bulk_cancel / bulk_delete delete the matching jobs in the order of their
// scan (the table's physical order), while a worker's completion (and
// extend, hand_back) reaches its jobs through the primary key, in msg_id
// order, once the queue is large enough for that plan. A job leased or
// extended later sits physically after later jobs: the two orders disagree,
// and the two statements deadlocked (one of them failed with 40P01).
const db = useTestDatabase();
const T = 'pgferry_tasks';

describe('tasks: bulk operations and a worker finishing the same jobs', () => {
  it.each(['bulk_cancel', 'bulk_delete'])(
    '%s of running jobs and complete() of two of them do not deadlock',
    async (fn) => {
      const name = `blo_${fn}`;
      const t = defineTask<{ i: number }>({ name, handler: () => undefined });
      await taskClient(db).ensure(t);
      const [gate, w, b] = await connections(db, 3);
      await w!.query(`SELECT ${T}.enqueue($1, '{"i":1}'), ${T}.enqueue($1, '{"i":2}')`, [name]);
      const leased = (
        await w!.query<{ msg_id: string; read_ct: number }>(
          `SELECT msg_id, read_ct FROM ${T}.fetch($1, 2, 600000) ORDER BY msg_id`,
          [name],
        )
      ).rows;
      const [j1, j2] = leased.map((r) => r.msg_id);
      // The lower job's row now sits after the other one (a renewed lease).
      await w!.query(`SELECT ${T}.extend($1, ARRAY[$2]::bigint[], ARRAY[$3]::integer[], 600000)`, [
        name,
        j1,
        leased[0]!.read_ct,
      ]);
      const order = await db.sql<{ msg_id: string }>(
        `SELECT msg_id FROM pgmq.q_${name} ORDER BY ctid`,
      );
      expect(order.map((r) => r.msg_id)).toEqual([j2, j1]);
      // The worker pauses right after it locked its first job (j1).
      await db.sql(`CREATE FUNCTION public.blo_pause() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF current_setting('application_name') = 'blo_worker' AND OLD.msg_id = ${Number(j1)} THEN
            PERFORM pg_advisory_xact_lock(4218);
          END IF;
          RETURN OLD;
        END $$`);
      await db.sql(
        `CREATE TRIGGER blo_pause BEFORE DELETE ON pgmq.q_${name} FOR EACH ROW EXECUTE FUNCTION public.blo_pause()`,
      );
      try {
        await gate!.query('SELECT pg_advisory_lock(4218)');
        await w!.query(`SET application_name = 'blo_worker'`);
        // A queue with a backlog: the completion reaches its few rows through
        // the primary key (an index scan, in msg_id order).
        await w!.query('SET enable_seqscan = off');
        await w!.query('SET enable_bitmapscan = off');
        for (const c of [w!, b!]) {
          await c.query(`SET deadlock_timeout = '100ms'`);
          await c.query(`SET lock_timeout = '20s'`);
        }
        const [wp, bp] = await Promise.all(
          [w!, b!].map(async (c) => Number((await c.query('SELECT pg_backend_pid() p')).rows[0].p)),
        );
        const waiting = async (pid: number): Promise<void> => {
          for (let i = 0; i < 400; i++) {
            const r = await db.sql<{ w: string | null }>(
              'SELECT wait_event_type w FROM pg_stat_activity WHERE pid = $1',
              [pid],
            );
            if (r[0]?.w === 'Lock' || r[0]?.w === 'Advisory') return;
            await sleep(25);
          }
          throw new Error(`session ${pid} never waited for a lock`);
        };
        const completing = w!.query(
          `SELECT ${T}.complete($1, ARRAY[$2, $3]::bigint[], ARRAY[$4, $4]::integer[])`,
          [name, j1, j2, leased[0]!.read_ct],
        );
        await waiting(wp!); // holds j1, paused
        const bulk = b!.query(`SELECT ${T}.${fn}($1, '{running}')`, [name]);
        await waiting(bp!); // waits for j1 (before migration 8: holding j2)
        await gate!.query('SELECT pg_advisory_unlock(4218)');
        const outcomes = await Promise.allSettled([completing, bulk]);
        expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok'))).toEqual([
          'ok',
          'ok',
        ]);
      } finally {
        await db.sql(`DROP TRIGGER blo_pause ON pgmq.q_${name}`);
        await db.sql('DROP FUNCTION public.blo_pause()');
      }
    },
  );
  it('a job held for long: bulk_cancel stops redoing its work after 25 tries and waits for it', async () => {
    const name = 'blo_held';
    const t = defineTask<{ i: number }>({ name, handler: () => undefined });
    await taskClient(db).ensure(t);
    const [holder, b] = await connections(db, 2);
    const n = 50;
    await b!.query(
      `SELECT ${T}.enqueue($1, jsonb_build_object('i', i)) FROM generate_series(1, $2) i`,
      [name, n],
    );
    // Another transaction holds one of the jobs (as a handler's own would).
    await holder!.query('BEGIN');
    await holder!.query(`SELECT 1 FROM pgmq.q_${name} ORDER BY msg_id LIMIT 1 FOR UPDATE`);
    const pid = Number((await b!.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p);
    const cancelling = b!.query<{ n: string }>(`SELECT ${T}.bulk_cancel($1) AS n`, [name]);
    await sleep(1500); // far more than 25 tries of 20 ms + a few ms each
    // Now it waits for the lock without a break: every sample finds it
    // waiting on a lock (while retrying it slept or worked a third of the time).
    const waits: (string | null)[] = [];
    for (let i = 0; i < 20; i++) {
      const [r] = await db.sql<{ w: string | null }>(
        'SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1',
        [pid],
      );
      waits.push(r?.w ?? null);
      await sleep(20);
    }
    await holder!.query('COMMIT');
    expect(Number((await cancelling).rows[0]!.n)).toBe(n);
    expect(waits).toEqual(Array(20).fill('Lock'));
  });
});
