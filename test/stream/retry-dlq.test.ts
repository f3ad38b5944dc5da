// nack → retry with retry_count raised → dead letter at max_retries → replay.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { S, drainAll, tick } from './helpers.js';

const db = useTestDatabase();

async function receive(stream: string, consumer: string) {
  return db.sql(`select * from ${S}.receive($1, $2)`, [stream, consumer]);
}
async function nack(m: Record<string, unknown>, reason: string | null = null) {
  return db.sql(
    `select ${S}.nack($1, ROW($2, $1, $3, $4, $5, $6, NULL, NULL, NULL, NULL)::${S}.message, '0 seconds', $7)`,
    [m.batch_id, m.msg_id, m.type, m.payload, m.retry_count, m.created_at, reason],
  );
}
async function redeliver(stream: string) {
  await db.sql(`select ${S}.maint_retry_events()`);
  await tick(db, stream);
}

describe('retries and dead letters', () => {
  it('retry_count rises 1..max, then the event is dead-lettered, other consumers unaffected', async () => {
    await db.sql(
      `select ${S}.create_queue('r'), ${S}.subscribe('r', 'flaky'), ${S}.subscribe('r', 'fine')`,
    );
    await db.sql(`select ${S}.set_queue_config('r', 'max_retries', '3')`);
    const [{ id }] = (await db.sql(`select ${S}.send('r', 'job', '{"n":1}'::jsonb) as id`)) as [
      { id: string },
    ];
    await tick(db, 'r');
    const fine = await receive('r', 'fine');
    expect(fine.map((m) => m.msg_id)).toEqual([id]);
    await db.sql(`select ${S}.ack($1)`, [fine[0]!.batch_id]);
    const counts: (number | null)[] = [];
    for (let i = 0; i < 4; i++) {
      const [m] = await receive('r', 'flaky');
      expect(m!.msg_id).toBe(id);
      counts.push(m!.retry_count as number | null);
      expect(await nack(m!, 'boom')).toEqual([{ nack: 1 }]);
      expect(await nack(m!, 'boom')).toEqual([{ nack: 1 }]); // repeat: no-op
      await db.sql(`select ${S}.ack($1)`, [m!.batch_id]);
      await redeliver('r');
    }
    expect(counts).toEqual([null, 1, 2, 3]);
    expect(await receive('r', 'flaky')).toEqual([]);
    expect(await receive('r', 'fine')).toEqual([]); // retries go to the nacking subscription only
    const dl = await db.sql(`select * from ${S}.dlq_inspect('r')`);
    expect(dl).toHaveLength(1);
    expect(dl[0]).toMatchObject({
      ev_id: id,
      ev_retry: 3,
      ev_type: 'job',
      ev_data: '{"n": 1}',
      dl_reason: 'boom',
    });
    const [{ co_id }] = (await db.sql(
      `select co_id from ${S}.consumer where co_name = 'flaky'`,
    )) as [{ co_id: number }];
    expect(dl[0]!.dl_consumer_id).toBe(co_id);
    // replay: a new event for every consumer, retry count reset
    const [{ nid }] = (await db.sql(`select ${S}.dlq_replay($1) as nid`, [dl[0]!.dl_id])) as [
      { nid: string },
    ];
    expect(Number(nid)).toBeGreaterThan(Number(id));
    await expect(db.sql(`select ${S}.dlq_replay($1)`, [dl[0]!.dl_id])).rejects.toThrow(
      `dead letter entry not found: ${dl[0]!.dl_id}`,
    );
    await tick(db, 'r');
    for (const c of ['flaky', 'fine']) {
      expect(await drainAll(db, 'r', c)).toEqual([Number(nid)]);
    }
    const [replayed] = await db.sql(
      `select ev_retry, ev_type, ev_data from ${S}.event_template e join ${S}.queue q on true where q.queue_name = 'r' and e.ev_id = $1`,
      [nid],
    );
    expect(replayed).toEqual({ ev_retry: null, ev_type: 'job', ev_data: '{"n": 1}' });
  });

  it('max_retries = 0 dead-letters on the first nack; default reason; replay_all and purge', async () => {
    await db.sql(`select ${S}.create_queue('r0'), ${S}.subscribe('r0', 'c')`);
    await db.sql(`select ${S}.set_queue_config('r0', 'max_retries', '0')`);
    await db.sql(`select ${S}.send_batch('r0', array['a','b']::text[])`);
    await tick(db, 'r0');
    const got = await receive('r0', 'c');
    for (const m of got) await nack(m);
    await db.sql(`select ${S}.ack($1)`, [got[0]!.batch_id]);
    const dl = await db.sql(`select dl_reason, ev_retry from ${S}.dlq_inspect('r0')`);
    expect(dl).toEqual([
      { dl_reason: 'max retries exceeded', ev_retry: null },
      { dl_reason: 'max retries exceeded', ev_retry: null },
    ]);
    expect(await db.sql(`select * from ${S}.dlq_replay_all('r0')`)).toEqual([
      { replayed: '2', failed: '0', first_error: null },
    ]);
    expect(await db.sql(`select * from ${S}.dlq_replay_all('nope')`)).toEqual([
      { replayed: '0', failed: '0', first_error: null },
    ]);
    await tick(db, 'r0');
    const again = await receive('r0', 'c');
    expect(again.map((m) => m.payload)).toEqual(['a', 'b']);
    for (const m of again) await nack(m);
    await db.sql(`select ${S}.ack($1)`, [again[0]!.batch_id]);
    expect(await db.sql(`select ${S}.dlq_purge('r0')`)).toEqual([{ dlq_purge: 0 }]); // younger than 30 days
    expect(await db.sql(`select ${S}.dlq_purge('r0', '0 seconds')`)).toEqual([{ dlq_purge: 2 }]);
  });

  it('nack + ack: only the nacked rows come back; unsubscribe drops pending retries and the consumer’s dead letters', async () => {
    await db.sql(`select ${S}.create_queue('part'), ${S}.subscribe('part', 'c')`);
    await db.sql(`select ${S}.send_batch('part', array['1','2','3']::text[])`);
    await tick(db, 'part');
    const got = await receive('part', 'c');
    await nack(got[1]!);
    await db.sql(`select ${S}.ack($1)`, [got[0]!.batch_id]);
    await redeliver('part');
    const back = await receive('part', 'c');
    expect(back.map((m) => [m.payload, m.retry_count])).toEqual([['2', 1]]);
    await nack(back[0]!);
    await db.sql(`select ${S}.set_queue_config('part', 'max_retries', '0')`);
    await db.sql(`select ${S}.ack($1)`, [back[0]!.batch_id]);
    expect(await db.sql(`select count(*)::int as n from ${S}.retry_queue`)).not.toEqual([{ n: 0 }]);
    await db.sql(`select ${S}.unsubscribe('part', 'c')`);
    expect(
      await db.sql(
        `select count(*)::int as n from ${S}.retry_queue r join ${S}.queue q on q.queue_id = r.ev_queue where q.queue_name = 'part'`,
      ),
    ).toEqual([{ n: 0 }]);
  });
});
