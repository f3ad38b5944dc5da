// Cooperative consumers: members of a group split the windows; a dead
// member's batch is taken over after dead_interval (new batch id, old one
// invalid); the group sees every event once; a normal consumer on the same
// stream still sees everything.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { S, connections, tick } from './helpers.js';

const db = useTestDatabase();

describe('cooperative consumers', () => {
  it('members on separate connections split windows; the group sees each event exactly once', async () => {
    await db.sql(`select ${S}.create_queue('co'), ${S}.subscribe('co', 'solo')`);
    const members = await connections(db, 3);
    for (let i = 0; i < 3; i++)
      await members[i]!.query(`select ${S}.subscribe_subconsumer('co', 'grp', $1)`, [`w${i}`]);
    const sent: string[] = [];
    for (let w = 0; w < 30; w++) {
      const [{ ids }] = (await db.sql(
        `select ${S}.send_batch('co', array[$1 || 'a', $1 || 'b']::text[]) as ids`,
        [String(w)],
      )) as [{ ids: string[] }];
      sent.push(...ids);
      await tick(db, 'co');
    }
    const got: string[][] = [[], [], []];
    await Promise.all(
      members.map(async (c, i) => {
        for (;;) {
          const rows = (
            await c.query(`select * from ${S}.receive_coop('co', 'grp', $1, 100, NULL)`, [`w${i}`])
          ).rows;
          if (rows.length === 0) {
            const more = (
              await c.query(
                `select exists (select 1 from ${S}.subscription s join ${S}.consumer cn on cn.co_id = s.sub_consumer join ${S}.tick t on t.tick_queue = s.sub_queue and t.tick_id > s.sub_last_tick where cn.co_name = 'grp') as m`,
              )
            ).rows[0].m;
            if (!more) break;
            continue;
          }
          got[i]!.push(...rows.map((r) => r.msg_id as string));
          await new Promise((r) => setTimeout(r, 2)); // let the others take windows meanwhile
          expect((await c.query(`select ${S}.ack($1)`, [rows[0].batch_id])).rows[0].ack).toBe(1);
        }
      }),
    );
    const all = got.flat();
    expect(all.sort()).toEqual([...sent].sort());
    expect(new Set(all).size).toBe(all.length);
    expect(got.filter((g) => g.length > 0).length).toBeGreaterThan(1); // really shared
    // the normal consumer on the same stream gets everything independently
    let solo: string[] = [];
    for (;;) {
      const rows = await db.sql(`select * from ${S}.receive('co', 'solo')`);
      const [{ m }] = (await db.sql(
        `select exists (select 1 from ${S}.get_consumer_info('co', 'solo') i join ${S}.tick t on t.tick_id > i.last_tick join ${S}.queue q on q.queue_id = t.tick_queue and q.queue_name = 'co') as m`,
      )) as [{ m: boolean }];
      if (rows.length) {
        solo = solo.concat(rows.map((r) => r.msg_id as string));
        await db.sql(`select ${S}.ack($1)`, [rows[0]!.batch_id]);
      } else if (!m) break;
    }
    expect(solo.sort()).toEqual([...sent].sort());
  });

  it("a dead member's batch is taken over after dead_interval; idle members never are", async () => {
    await db.sql(`select ${S}.create_queue('takeover')`);
    await db.sql(
      `select ${S}.subscribe_subconsumer('takeover', 'g', 'dead'), ${S}.subscribe_subconsumer('takeover', 'g', 'alive')`,
    );
    await db.sql(`select ${S}.send('takeover', 'x')`);
    await tick(db, 'takeover');
    const first = await db.sql(
      `select * from ${S}.receive_coop('takeover', 'g', 'dead', 100, NULL)`,
    );
    expect(first).toHaveLength(1);
    // a fresh heartbeat protects it
    expect(
      await db.sql(`select * from ${S}.receive_coop('takeover', 'g', 'alive', 100, '1 hour')`),
    ).toEqual([]);
    // the member goes silent (heartbeat in the past)
    await db.sql(
      `update ${S}.subscription set sub_active = now() - interval '10 minutes' where sub_batch = $1`,
      [first[0]!.batch_id],
    );
    const taken = await db.sql(
      `select * from ${S}.receive_coop('takeover', 'g', 'alive', 100, '5 minutes')`,
    );
    expect(taken.map((r) => r.msg_id)).toEqual([first[0]!.msg_id]);
    expect(taken[0]!.batch_id).not.toBe(first[0]!.batch_id);
    expect(await db.sql(`select ${S}.ack($1)`, [first[0]!.batch_id])).toEqual([{ ack: 0 }]);
    await expect(
      db.sql(
        `select ${S}.nack($1, ROW($2, $1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::${S}.message)`,
        [first[0]!.batch_id, first[0]!.msg_id],
      ),
    ).rejects.toThrow(`batch not found: ${first[0]!.batch_id}`);
    expect(await db.sql(`select ${S}.ack($1)`, [taken[0]!.batch_id])).toEqual([{ ack: 1 }]);
    expect(
      await db.sql(`select * from ${S}.receive_coop('takeover', 'g', 'dead', 100, NULL)`),
    ).toEqual([]);
  });

  it('name rules, conversion, and the normal API refusing cooperative rows', async () => {
    await db.sql(`select ${S}.create_queue('rules'), ${S}.subscribe('rules', 'norm')`);
    const err = async (sql: string) =>
      db.sql(sql).then(
        () => 'no error',
        (e: Error) => e.message,
      );
    expect(await err(`select ${S}.subscribe_subconsumer('rules', 'a.b', 's')`)).toBe(
      'cooperative consumer name must not contain dot: a.b',
    );
    expect(await err(`select ${S}.subscribe_subconsumer('rules', 'a', 's.t')`)).toBe(
      'cooperative subconsumer name must not contain dot: s.t',
    );
    expect(await err(`select ${S}.subscribe_subconsumer('rules', '', 's')`)).toBe(
      'consumer name must not be empty',
    );
    expect(await err(`select ${S}.subscribe_subconsumer('', 'a', 's')`)).toBe(
      'queue name must not be empty',
    );
    expect(await err(`select ${S}.subscribe_subconsumer('rules', 'a', '')`)).toBe(
      'subconsumer name must not be empty',
    );
    expect(await err(`select ${S}.subscribe_subconsumer('nope', 'a', 's')`)).toBe(
      'Event queue not created yet',
    );
    expect(await err(`select ${S}.subscribe_subconsumer('rules', 'norm', 's')`)).toBe(
      'consumer norm on queue rules is already a normal consumer; explicit conversion is required',
    );
    expect(await db.sql(`select ${S}.subscribe_subconsumer('rules', 'norm', 's', true)`)).toEqual([
      { subscribe_subconsumer: 1 },
    ]);
    expect(await err(`select * from ${S}.receive('rules', 'norm')`)).toBe(
      'consumer norm on queue rules is a cooperative main consumer; use cooperative receive/next_batch with a subconsumer',
    );
    expect(await err(`select * from ${S}.receive('rules', 'norm.s')`)).toBe(
      'consumer norm.s on queue rules is a cooperative subconsumer; use receive_coop / next_batch (cooperative form) instead of the legacy 5-arg next_batch_custom',
    );
    expect(await err(`select ${S}.unsubscribe('rules', 'norm')`)).toBe(
      'cannot unregister cooperative main consumer with registered subconsumers',
    );
    expect(await err(`select * from ${S}.receive_coop('rules', 'norm', 's', 0)`)).toBe(
      'pgque.receive_coop: max_return must be >= 1, got 0',
    );
    expect(await err(`select ${S}.unsubscribe_subconsumer('rules', 'norm', 's', 7)`)).toBe(
      'unsupported batch_handling value: 7',
    );
    expect(await db.sql(`select ${S}.unsubscribe('rules', 'norm.s')`)).toEqual([
      { unsubscribe: 1 },
    ]);
    expect(
      await db.sql(
        `select sub_role from ${S}.subscription s join ${S}.consumer c on c.co_id = s.sub_consumer where co_name = 'norm'`,
      ),
    ).toEqual([{ sub_role: 'normal' }]);
  });

  it('unsubscribe with batch_handling = 1 hands the batch back to the group as retries', async () => {
    await db.sql(
      `select ${S}.create_queue('handback'), ${S}.subscribe_subconsumer('handback', 'g', 'a'), ${S}.subscribe_subconsumer('handback', 'g', 'b')`,
    );
    await db.sql(`select ${S}.send('handback', 'x')`);
    await tick(db, 'handback');
    const [m] = await db.sql(`select * from ${S}.receive_coop('handback', 'g', 'a')`);
    expect(await db.sql(`select ${S}.unsubscribe_subconsumer('handback', 'g', 'a', 1)`)).toEqual([
      { unsubscribe_subconsumer: 1 },
    ]);
    await db.sql(`update ${S}.retry_queue set ev_retry_after = now() - interval '1 second'`);
    await db.sql(`select ${S}.maint_retry_events()`);
    await tick(db, 'handback');
    const got = await db.sql(
      `select msg_id, retry_count from ${S}.receive_coop('handback', 'g', 'b')`,
    );
    expect(got).toEqual([{ msg_id: m!.msg_id, retry_count: 1 }]);
  });
});
