import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { S, connections, drainAll, tick } from './helpers.js';

const db = useTestDatabase();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// insert_event (the SQL send path) reads the queue's current event table in
// one statement (_producer_queue) and inserts into it in the next. Rotation
// only waits for transactions with an xid: before stream migration 13 a
// sender that had read the table but had no xid yet (its INSERT waiting for
// a lock on that table) held nothing back, two switches could happen
// meanwhile, and the next maint() emptied the table it then inserted into:
// the event was lost before any consumer received it. Now the SQL senders
// take their xid first (sql/stream/0013_send_xid.sql), so rotation waits
// for them. (The prepared send of src/stream/statements.ts re-checks
// queue_cur_table in the INSERT's own statement and was not affected.)
describe('rotation and a sender held between reading the current table and inserting', () => {
  it('keeps the event', async () => {
    await db.sql(`SELECT ${S}.create_queue('rli'), ${S}.subscribe('rli', 'c')`);
    await db.sql(`SELECT ${S}.set_queue_config('rli', 'rotation_period', '1 millisecond')`);
    const [blocker, producer] = await connections(db, 2);
    const cur = async (): Promise<{ t: string; n: number }> =>
      (
        await db.sql<{ t: string; n: number }>(
          `SELECT format('%I.%I', '${S}', 'event_' || queue_id || '_' || queue_cur_table) AS t,
                  queue_cur_table AS n FROM ${S}.queue WHERE queue_name = 'rli'`,
        )
      )[0]!;
    const first = await cur();
    await blocker!.query('BEGIN');
    await blocker!.query(`LOCK TABLE ${first.t} IN SHARE MODE`);
    const pid = Number((await producer!.query('SELECT pg_backend_pid() p')).rows[0].p);
    const sending = producer!.query(`SELECT ${S}.send('rli', '{"late":true}'::jsonb)`);
    for (let i = 0; ; i++) {
      const r = await db.sql<{ w: string | null }>(
        'SELECT wait_event_type w FROM pg_stat_activity WHERE pid = $1',
        [pid],
      );
      if (r[0]?.w === 'Lock') break;
      if (i > 400) throw new Error('the send never waited');
      await sleep(10);
    }
    // Rotation goes on around the held sender: ticks, a drained consumer and
    // maint() for a while. Before stream migration 13 the sender had no
    // transaction id, two switches went through and the next maint() emptied
    // the table it had read; now rotation waits for it after the first.
    let switches = 0;
    for (let i = 0, last = first.n; i < 60; i++) {
      await tick(db, 'rli');
      await drainAll(db, 'rli', 'c');
      await db.sql(`SELECT ${S}.maint()`);
      await db.sql(`SELECT ${S}.maint_rotate_tables_step2()`);
      const now = (await cur()).n;
      if (now !== last) switches++;
      last = now;
      await sleep(5);
    }
    expect(switches).toBeLessThanOrEqual(1);
    await blocker!.query('COMMIT');
    await sending;
    await db.sql(`SELECT ${S}.maint()`);
    await tick(db, 'rli');
    const got = await drainAll(db, 'rli', 'c');
    expect(got).toHaveLength(1);
  });
});
