import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import type { Delivery } from '../../src/queue/consumer.js';

const db = useTestDatabase();
const S = db.queueSchema;

describe('stale-read protection in SQL (*_if_held, receipt = read_ct)', () => {
  it('succeeds only for the read whose read_ct still matches', async () => {
    await db.sql(`SELECT ${S}.create('held')`);
    await db.sql(`SELECT ${S}.send_batch('held', array['{}','{}','{}']::jsonb[])`);
    await db.sql(`SELECT * FROM ${S}.read('held', 0, 3)`); // read_ct 1, expired at once
    await db.sql(`SELECT * FROM ${S}.read('held', 60, 3)`); // read_ct 2: the new holder
    const one = async (sql: string): Promise<unknown> => Object.values((await db.sql(sql))[0]!)[0];
    expect(await one(`SELECT ${S}.delete_if_held('held', 1, 1)`)).toBe(false);
    expect(await one(`SELECT ${S}.archive_if_held('held', 2, 1)`)).toBe(false);
    expect(await db.sql(`SELECT * FROM ${S}.set_vt_if_held('held', 3, 1, 0)`)).toEqual([]);
    expect(await db.sql(`SELECT * FROM ${S}.set_vt_if_held('held', 3, 1, now())`)).toEqual([]);
    // Nothing changed for the holder.
    const rows = await db.sql<{ read_ct: number; later: boolean }>(
      `SELECT read_ct, vt > clock_timestamp() + interval '50 s' AS later FROM ${S}.q_held ORDER BY msg_id`,
    );
    expect(rows).toEqual([
      { read_ct: 2, later: true },
      { read_ct: 2, later: true },
      { read_ct: 2, later: true },
    ]);
    // The current holder succeeds.
    expect(await db.sql(`SELECT read_ct FROM ${S}.set_vt_if_held('held', 3, 2, 120)`)).toEqual([
      { read_ct: 2 },
    ]);
    expect(await one(`SELECT ${S}.delete_if_held('held', 1, 2)`)).toBe(true);
    expect(await one(`SELECT ${S}.archive_if_held('held', 2, 2)`)).toBe(true);
    expect(await db.sql(`SELECT msg_id, read_ct FROM ${S}.a_held`)).toEqual([
      { msg_id: '2', read_ct: 2 },
    ]);
    await expect(db.sql(`SELECT ${S}.delete_if_held('nope', 1, 1)`)).rejects.toMatchObject({
      code: '42P01',
    });
  });
});

describe('stale-read protection in the consumer', () => {
  it("consumer 1's vt runs out, consumer 2 reads the message: consumer 1's delete/archive/extend/release return false and leave it with consumer 2", async () => {
    const c1 = db.queueClient();
    const c2 = db.queueClient();
    await c1.createQueue('stale');
    const id = await c1.send('stale', { job: 1 });

    const first = async (client: typeof c1, vt: number): Promise<Delivery<unknown>> => {
      // Each consumer on its own client (own pool): really separate connections.
      for await (const d of client.consume('stale', {
        visibilityTimeoutSeconds: vt,
        listen: false,
        batchSize: 1,
      }))
        return d;
      throw new Error('no delivery');
    };
    // vt 0: consumer 1's visibility timeout has run out as soon as it has the message.
    const d1 = await first(c1, 0);
    const d2 = await first(c2, 60);
    expect(d1.msgId).toBe(id);
    expect(d2.msgId).toBe(id);
    expect([d1.readCount, d2.readCount]).toEqual([1, 2]);

    expect(await d1.delete()).toBe(false);
    expect(await d1.archive()).toBe(false);
    expect(await d1.extend(300)).toBe(false);
    expect(await d1.release()).toBe(false);
    const [row] = await db.sql<{ read_ct: number; vt: Date }>(
      `SELECT read_ct, vt FROM ${S}.q_stale`,
    );
    expect(row!.read_ct).toBe(2);
    expect(row!.vt.getTime()).toBe(d2.visibleAt.getTime()); // consumer 2's vt, untouched
    expect(await db.sql(`SELECT 1 FROM ${S}.a_stale`)).toHaveLength(0);

    // Consumer 2 holds it and can finish it.
    expect(await d2.extend(120)).toBe(true);
    expect(d2.visibleAt.getTime()).toBeGreaterThan(row!.vt.getTime());
    expect(await d2.archive()).toBe(true);
    expect(await db.sql(`SELECT msg_id FROM ${S}.a_stale`)).toEqual([{ msg_id: String(id) }]);
  });

  it('the client methods: deleteIfHeld / archiveIfHeld / setVisibilityTimeoutIfHeld', async () => {
    const client = db.queueClient();
    await client.createQueue('heldc');
    const id = await client.send('heldc', 1);
    const [m] = await client.read('heldc', { visibilityTimeoutSeconds: 30 });
    expect(await client.setVisibilityTimeoutIfHeld('heldc', id, m!.readCount + 1, 0)).toBeNull();
    const at = new Date(Date.now() + 3_600_000);
    expect(
      (await client.setVisibilityTimeoutIfHeld('heldc', id, m!.readCount, at))!.visibleAt.getTime(),
    ).toBe(at.getTime());
    expect(await client.deleteIfHeld('heldc', id, 0)).toBe(false);
    expect(await client.archiveIfHeld('heldc', id, 0)).toBe(false);
    expect(await client.deleteIfHeld('heldc', id, m!.readCount)).toBe(true);
  });
});
