import { describe, expect, it } from 'vitest';
import { connections } from '../support/connections.js';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const S = db.queueSchema;

// With insert notifications enabled, every insert runs _notify_listeners.
// Until queue migration 13 its first call per transaction and queue UPDATEd
// the queue's throttle row and so held that row until the transaction
// ended: a second transaction inserting into the queue waited for it (with
// interval 0 always; with an interval, whenever the row looked due in its
// snapshot), and two transactions sending to two queues in opposite orders
// deadlocked (40P01). Now the row is taken with FOR UPDATE SKIP LOCKED, and
// a sender that finds it held notifies too (sql/queue/0013_notify_no_wait.sql).
describe('insert notifications and concurrent senders', () => {
  it('two transactions sending to two notifying queues in opposite orders do not deadlock', async () => {
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
  });

  it('a send does not wait for another open transaction that sent to the same queue', async () => {
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
  });
  it('a REPEATABLE READ sender whose snapshot predates another notification neither fails nor stays silent', async () => {
    await db.sql(`SELECT ${S}.create('ntl_rr')`);
    await db.sql(`SELECT ${S}.enable_notify_insert('ntl_rr', 0)`);
    const [a, b, listener] = await connections(db, 3);
    const heard: string[] = [];
    listener!.on('notification', (m) => heard.push(m.channel));
    await listener!.query(`LISTEN "${S}.q_ntl_rr.INSERT"`);
    await b!.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await b!.query('SELECT 1'); // the snapshot is taken here
    await a!.query(`SELECT ${S}.send('ntl_rr', '{"from":"a"}'::jsonb)`); // updates the throttle row
    const sent = await b!.query(`SELECT ${S}.send('ntl_rr', '{"from":"b"}'::jsonb)`).then(
      () => 'ok',
      (e: Error) => e.message,
    );
    await b!.query(sent === 'ok' ? 'COMMIT' : 'ROLLBACK');
    expect(sent).toBe('ok');
    for (let i = 0; i < 200 && heard.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(heard).toHaveLength(2);
  });
});
