import { describe, expect, it } from 'vitest';
import { connections } from '../support/connections.js';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const S = db.queueSchema;

// With insert notifications enabled, every insert runs _notify_listeners
// (sql/queue/0006_notify_crash_safe.sql), whose first call per transaction and
// queue UPDATEs the queue's throttle row and so holds that row until the
// transaction ends. A second transaction inserting into the queue waits for
// it (with interval 0 always; with an interval, whenever the row looked due
// in its snapshot): sends into one queue are serialised through the commits
// of their transactions, and two transactions sending to two queues in
// opposite orders deadlock (one fails with 40P01).
//
// Proposed fix (a queue migration): take the throttle row with FOR UPDATE
// SKIP LOCKED (UPDATE … WHERE ctid = (SELECT … FOR UPDATE SKIP LOCKED)), never
// waiting; when the row is held by another transaction, NOTIFY anyway (the
// holder may roll back and take its NOTIFY with it; an extra notification is
// harmless, and only happens while inserts overlap), as the tasks engine's
// insert trigger does since tasks migration 8.
describe('insert notifications and concurrent senders', () => {
  it.fails(
    'two transactions sending to two notifying queues in opposite orders do not deadlock',
    async () => {
      for (const q of ['ntl_a', 'ntl_b']) {
        await db.sql(`SELECT ${S}.create($1)`, [q]);
        await db.sql(`SELECT ${S}.enable_notify_insert($1, 0)`, [q]);
      }
      const [t1, t2] = await connections(db, 2);
      for (const c of [t1!, t2!]) {
        await c.query(`SET deadlock_timeout = '100ms'`);
        await c.query('BEGIN');
      }
      await t1!.query(`SELECT ${S}.send('ntl_a', '{"from":1}'::jsonb)`);
      await t2!.query(`SELECT ${S}.send('ntl_b', '{"from":2}'::jsonb)`);
      const outcomes = await Promise.allSettled([
        t1!.query(`SELECT ${S}.send('ntl_b', '{"from":1}'::jsonb)`),
        t2!.query(`SELECT ${S}.send('ntl_a', '{"from":2}'::jsonb)`),
      ]);
      for (const c of [t1!, t2!]) await c.query('ROLLBACK');
      expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok'))).toEqual([
        'ok',
        'ok',
      ]);
    },
  );

  it.fails(
    'a send does not wait for another open transaction that sent to the same queue',
    async () => {
      await db.sql(`SELECT ${S}.create('ntl_c')`);
      await db.sql(`SELECT ${S}.enable_notify_insert('ntl_c', 0)`);
      const [t1, t2] = await connections(db, 2);
      await t1!.query('BEGIN');
      await t1!.query(`SELECT ${S}.send('ntl_c', '{"from":1}'::jsonb)`); // a business transaction goes on
      await t2!.query(`SET lock_timeout = '500ms'`);
      const other = await t2!.query(`SELECT ${S}.send('ntl_c', '{"from":2}'::jsonb)`).then(
        () => 'ok',
        (e: Error) => e.message,
      );
      await t1!.query('ROLLBACK');
      expect(other).toBe('ok');
    },
  );
});
