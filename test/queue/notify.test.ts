import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { InvalidArgumentError, QueueNotFoundError } from '../../src/errors.js';
import { notifyChannel } from '../../src/queue/notify.js';
import { testClient } from '../support/connections.js';

const db = useTestDatabase();
const S = db.queueSchema;

/**
 * A LISTEN on its own connection. `settle()` sends a marker notification on
 * the same channel and waits for it: notifications reach a listener in commit
 * order, so once the marker is in, every earlier notification is too, and
 * counting is exact (no sleeps).
 */
async function listener(channel: string): Promise<{ count(): number; settle(): Promise<number> }> {
  const c = testClient({ connectionString: db.url });
  await c.connect();
  db.track({ close: () => c.end() });
  const got: (string | undefined)[] = [];
  c.on('notification', (n) => {
    if (n.channel === channel) got.push(n.payload);
  });
  await c.query(`LISTEN "${channel.replaceAll('"', '""')}"`);
  let markers = 0;
  return {
    count: () => got.filter((p) => !p?.startsWith('marker')).length,
    settle: async () => {
      const m = `marker${++markers}`;
      await db.sql(`SELECT pg_notify($1, $2)`, [channel, m]);
      await eventually(() => got.includes(m));
      return got.filter((p) => !p?.startsWith('marker')).length;
    },
  };
}

const ch = (q: string, ev: 'INSERT' | 'DELETE' = 'INSERT'): string => `${S}.q_${q}.${ev}`;

describe('insert notifications', () => {
  it('enable_notify_insert: throttle row, constraint trigger with the queue name as argument, channel <schema>.q_<name>.INSERT', async () => {
    await db.sql(`SELECT ${S}.create('n1')`);
    await db.sql(`SELECT ${S}.enable_notify_insert('n1')`);
    const rows = await db.sql(`SELECT * FROM ${S}.list_notify_insert_throttles()`);
    expect(rows).toEqual([
      { queue_name: 'n1', throttle_interval_ms: 250, last_notified_at: new Date(0) },
    ]);
    const [trg] = await db.sql<{ tgname: string; tgdeferrable: boolean; args: string; fn: string }>(
      `SELECT tgname, tgdeferrable, encode(tgargs, 'escape') AS args, tgfoid::regproc::text AS fn
         FROM pg_trigger WHERE tgrelid = $1::regclass`,
      [`${S}.q_n1`],
    );
    expect(trg).toMatchObject({
      tgname: 'trigger_notify_queue_insert_listeners',
      tgdeferrable: true,
    });
    expect(trg!.args).toBe('n1\\000');
    expect(trg!.fn).toMatch(/notify_queue_listeners$/);
    const [{ persistence }] = (await db.sql<{ persistence: string }>(
      `SELECT relpersistence AS persistence FROM pg_class WHERE oid = $1::regclass`,
      [`${S}.notify_insert_throttle`],
    )) as [{ persistence: string }];
    expect(persistence).toBe('u'); // UNLOGGED
    expect(notifyChannel(S, 'n1')).toBe(ch('n1'));

    const l = await listener(ch('n1'));
    await db.sql(`SELECT ${S}.send('n1', '{}')`);
    expect(await l.settle()).toBe(1);
    // Within the 250 ms throttle: no second notification.
    await db.sql(`SELECT ${S}.send('n1', '{}')`);
    expect(await l.settle()).toBe(1);
    // update_notify_insert resets last_notified_at: the next insert notifies again.
    await db.sql(`SELECT ${S}.update_notify_insert('n1', 0)`);
    await db.sql(`SELECT ${S}.send('n1', '{}')`);
    expect(await l.settle()).toBe(2);
  });

  it('throttle 0: one notification per inserting transaction, however many rows (batch or several sends)', async () => {
    await db.sql(`SELECT ${S}.create('n0')`);
    await db.sql(`SELECT ${S}.enable_notify_insert('n0', 0)`);
    const l = await listener(ch('n0'));
    await db.sql(
      `SELECT ${S}.send_batch('n0', array_agg('{}'::jsonb)) FROM generate_series(1, 100)`,
    );
    expect(await l.settle()).toBe(1);
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      for (let i = 0; i < 5; i++) await c.query(`SELECT ${S}.send('n0', '{}')`);
      await c.query('COMMIT');
      // A rolled-back transaction notifies nobody.
      await c.query('BEGIN');
      await c.query(`SELECT ${S}.send('n0', '{}')`);
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
    expect(await l.settle()).toBe(2);
    await db.sql(`SELECT ${S}.send('n0', '{}')`);
    await db.sql(`SELECT ${S}.send('n0', '{}')`);
    expect(await l.settle()).toBe(4);
    // The throttle row records the last notification.
    const [row] = await db.sql<{ last_notified_at: Date }>(
      `SELECT * FROM ${S}.list_notify_insert_throttles() WHERE queue_name = 'n0'`,
    );
    expect(row!.last_notified_at.getTime()).toBeGreaterThan(0);
  });

  it('1.13.1: a mixed-case queue notifies on its name as given', async () => {
    await db.sql(`SELECT ${S}.create('MixedN')`);
    await db.sql(`SELECT ${S}.enable_notify_insert('MixedN', 0)`);
    const l = await listener(ch('MixedN'));
    await db.sql(`SELECT ${S}.send('MixedN', '{}')`);
    expect(await l.settle()).toBe(1);
  });

  it('errors and silent cases of enable / update / disable; drop_queue removes the setup', async () => {
    await db.sql(`SELECT ${S}.create('ne')`);
    const fails = (sql: string, message: string): Promise<void> =>
      expect(db.sql(sql)).rejects.toMatchObject({ code: 'P0001', message });
    await fails(
      `SELECT ${S}.enable_notify_insert('ne', -1)`,
      'throttle_interval_ms must be non-negative',
    );
    await fails(
      `SELECT ${S}.enable_notify_insert('nx')`,
      `Queue "nx" does not exist. Create it first using ${S}.create()`,
    );
    await fails(
      `SELECT ${S}.update_notify_insert('ne', -5)`,
      'throttle_interval_ms must be non-negative, got: -5',
    );
    await fails(
      `SELECT ${S}.update_notify_insert('nx', 5)`,
      `Queue "nx" does not exist. Create the queue first using ${S}.create()`,
    );
    await fails(
      `SELECT ${S}.update_notify_insert('ne', 5)`,
      `Queue "ne" does not have notify_insert enabled. Enable it first using ${S}.enable_notify_insert()`,
    );
    await db.sql(`SELECT ${S}.disable_notify_insert('ne')`);
    await db.sql(`SELECT ${S}.disable_notify_insert('never_existed')`);
    // Enabling twice replaces the setup (one trigger, one row).
    await db.sql(`SELECT ${S}.enable_notify_insert('ne', 10)`);
    await db.sql(`SELECT ${S}.enable_notify_insert('ne', 20)`);
    expect(
      await db.sql(
        `SELECT throttle_interval_ms FROM ${S}.notify_insert_throttle WHERE queue_name = 'ne'`,
      ),
    ).toEqual([{ throttle_interval_ms: 20 }]);
    await db.sql(`SELECT ${S}.disable_notify_insert('ne')`);
    expect(
      await db.sql(`SELECT 1 FROM pg_trigger WHERE tgrelid = $1::regclass`, [`${S}.q_ne`]),
    ).toHaveLength(0);
    expect(
      await db.sql(`SELECT 1 FROM ${S}.notify_insert_throttle WHERE queue_name = 'ne'`),
    ).toHaveLength(0);
    await db.sql(`SELECT ${S}.enable_notify_insert('ne')`);
    await db.sql(`SELECT ${S}.drop_queue('ne')`);
    expect(
      await db.sql(`SELECT 1 FROM ${S}.notify_insert_throttle WHERE queue_name = 'ne'`),
    ).toHaveLength(0);
  });
});

describe('delete notifications (1.11.3)', () => {
  it('notify on delete (and archive, pop) on <schema>.q_<name>.DELETE, with the same management functions', async () => {
    await db.sql(`SELECT ${S}.create('nd')`);
    await db.sql(`SELECT ${S}.send_batch('nd', array['{}','{}','{}','{}']::jsonb[])`);
    await db.sql(`SELECT ${S}.enable_notify_delete('nd', 0)`);
    expect(
      (await db.sql(`SELECT * FROM ${S}.list_notify_delete_throttles()`)).map((r) => r.queue_name),
    ).toEqual(['nd']);
    const l = await listener(ch('nd', 'DELETE'));
    await db.sql(`SELECT ${S}.delete('nd', 1::bigint)`);
    expect(await l.settle()).toBe(1);
    await db.sql(`SELECT ${S}.archive('nd', ARRAY[2, 3]::bigint[])`);
    expect(await l.settle()).toBe(2);
    await db.sql(`SELECT ${S}.update_notify_delete('nd', 100000)`);
    await db.sql(`SELECT * FROM ${S}.pop('nd')`);
    expect(await l.settle()).toBe(3);
    await expect(db.sql(`SELECT ${S}.update_notify_delete('nd', -1)`)).rejects.toMatchObject({
      message: 'throttle_interval_ms must be non-negative, got: -1',
    });
    await db.sql(`SELECT ${S}.disable_notify_delete('nd')`);
    await expect(db.sql(`SELECT ${S}.update_notify_delete('nd', 1)`)).rejects.toMatchObject({
      message: `Queue "nd" does not have notify_delete enabled. Enable it first using ${S}.enable_notify_delete()`,
    });
  });
});

describe('notifications through the client', () => {
  it('enable/update/list/disable and onInsert / listen(delete) on the driver connection', async () => {
    const client = db.queueClient();
    await client.createQueue('cn');
    await client.enableNotifyInsert('cn', { throttleIntervalMs: 0 });
    await client.enableNotifyDelete('cn');
    expect(await client.listNotifyInsertThrottles()).toContainEqual({
      queueName: 'cn',
      throttleIntervalMs: 0,
      lastNotifiedAt: new Date(0),
    });
    await client.updateNotifyDelete('cn', 0);
    expect(
      (await client.listNotifyDeleteThrottles()).find((t) => t.queueName === 'cn')!
        .throttleIntervalMs,
    ).toBe(0);
    let inserts = 0;
    let deletes = 0;
    const sub = await client.onInsert('cn', () => inserts++);
    const sub2 = await client.listen('cn', () => deletes++, 'delete');
    const id = await client.send('cn', { a: 1 });
    await eventually(() => inserts === 1);
    await client.delete('cn', id);
    await eventually(() => deletes === 1);
    await sub.close();
    await sub2.close();
    await client.updateNotifyInsert('cn', 10);
    await client.disableNotifyInsert('cn');
    await client.disableNotifyDelete('cn');
    expect(
      (await client.listNotifyInsertThrottles()).find((t) => t.queueName === 'cn'),
    ).toBeUndefined();
    await expect(
      client.enableNotifyInsert('cn', { throttleIntervalMs: -1 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.enableNotifyInsert('nope_cn')).rejects.toBeInstanceOf(QueueNotFoundError);
    await expect(client.updateNotifyInsert('cn', 5)).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
