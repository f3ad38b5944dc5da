// PgQue SQL API contract: the exact SQL pgque-py (and its Go, Ruby and
// TypeScript siblings) issue, each in its own committed transaction, and
// PgQue's documented results and errors.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { S, connections, tick } from './helpers.js';

const db = useTestDatabase();

async function fails(
  sql: string,
  params: unknown[] = [],
): Promise<{ code: string; message: string }> {
  try {
    await db.sql(sql, params);
  } catch (err) {
    const e = err as { code: string; message: string };
    return { code: e.code, message: e.message };
  }
  throw new Error(`expected failure: ${sql}`);
}

describe('the pgque-py method table, statement by statement', () => {
  it('send, send_batch, subscribe, receive, ack, nack, force_next_tick, ticker', async () => {
    const [c] = await connections(db, 1);
    const q = async (text: string, params: unknown[] = []) => (await c!.query(text, params)).rows;
    expect(await q(`select ${S}.create_queue($1)`, ['orders'])).toEqual([{ create_queue: 1 }]);
    expect(await q(`select ${S}.subscribe($1, $2)`, ['orders', 'order_worker'])).toEqual([
      { subscribe: 1 },
    ]);
    expect(await q(`select ${S}.subscribe($1, $2)`, ['orders', 'order_worker'])).toEqual([
      { subscribe: 0 },
    ]);
    const [one] = await q(`select ${S}.send($1, $2, $3::jsonb)`, [
      'orders',
      'order.created',
      '{"order_id": 42, "total": 99.95}',
    ]);
    expect(Number(one!.send)).toBeGreaterThan(0);
    const [plain] = await q(`select ${S}.send($1, $2::jsonb)`, ['orders', '{"order_id":43}']);
    const [batch] = await q(`select ${S}.send_batch($1, $2, $3::jsonb[])`, [
      'orders',
      'order.created',
      ['{"order_id":44}', '{"order_id":45}'],
    ]);
    expect((batch!.send_batch as string[]).length).toBe(2);
    await q(`select ${S}.force_next_tick($1)`, ['orders']);
    const [t] = await q(`select ${S}.ticker($1)`, ['orders']);
    expect(Number(t!.ticker)).toBe(2);
    const rows = await q(`select * from ${S}.receive($1, $2, $3)`, ['orders', 'order_worker', 100]);
    expect(rows.map((r) => r.type)).toEqual([
      'order.created',
      'default',
      'order.created',
      'order.created',
    ]);
    expect(rows[0]!.payload).toBe('{"total": 99.95, "order_id": 42}'); // jsonb canonical text
    expect(rows.map((r) => Number(r.msg_id))).toEqual([
      Number(one!.send),
      Number(plain!.send),
      ...(batch!.send_batch as string[]).map(Number),
    ]);
    expect(new Set(rows.map((r) => r.batch_id)).size).toBe(1);
    expect(rows[0]!.retry_count).toBeNull();
    expect(Object.keys(rows[0]!)).toEqual([
      'msg_id',
      'batch_id',
      'type',
      'payload',
      'retry_count',
      'created_at',
      'extra1',
      'extra2',
      'extra3',
      'extra4',
    ]);
    // until ack, receive returns the same batch again
    const again = await q(`select * from ${S}.receive($1, $2, $3)`, ['orders', 'order_worker', 2]);
    expect(again.map((r) => r.msg_id)).toEqual(rows.slice(0, 2).map((r) => r.msg_id));
    const m = rows[1]!;
    expect(
      await q(
        `select ${S}.nack($1, ROW($2,$3,$4,$5,$6,$7,$8,$9,$10,$11)::${S}.message, $12::interval, $13)`,
        [
          m.batch_id,
          m.msg_id,
          m.batch_id,
          m.type,
          m.payload,
          m.retry_count,
          m.created_at,
          m.extra1,
          m.extra2,
          m.extra3,
          m.extra4,
          '0 seconds',
          'test',
        ],
      ),
    ).toEqual([{ nack: 1 }]);
    expect(await q(`select ${S}.ack($1)`, [m.batch_id])).toEqual([{ ack: 1 }]);
    expect(await q(`select ${S}.ack($1)`, [m.batch_id])).toEqual([{ ack: 0 }]); // finished: stale
    expect(await q(`select ${S}.ack($1)`, [999999])).toEqual([{ ack: 0 }]); // unknown
    expect(
      await q(`select * from ${S}.receive($1, $2, $3)`, ['orders', 'order_worker', 100]),
    ).toEqual([]);
    // the nacked event alone comes back, with retry_count 1, after retry maintenance and a tick
    expect(await q(`select ${S}.maint_retry_events()`)).toEqual([{ maint_retry_events: 1 }]);
    await q(`select ${S}.force_next_tick($1)`, ['orders']);
    expect(Number((await q(`select ${S}.ticker()`))[0]!.ticker)).toBe(1);
    const retried = await q(`select * from ${S}.receive($1, $2, $3)`, [
      'orders',
      'order_worker',
      100,
    ]);
    expect(retried.map((r) => [r.msg_id, r.retry_count, r.payload])).toEqual([
      [m.msg_id, 1, m.payload],
    ]);
    expect(retried[0]!.created_at).toEqual(m.created_at);
    await q(`select ${S}.ack($1)`, [retried[0]!.batch_id]);
    expect(await q(`select ${S}.unsubscribe($1, $2)`, ['orders', 'order_worker'])).toEqual([
      { unsubscribe: 1 },
    ]);
    expect(await q(`select ${S}.unsubscribe($1, $2)`, ['orders', 'order_worker'])).toEqual([
      { unsubscribe: 0 },
    ]);
  });

  it('cooperative calls: subscribe_subconsumer, receive_coop, touch_subconsumer, unsubscribe_subconsumer', async () => {
    await db.sql(`select ${S}.create_queue('coop_api')`);
    expect(
      await db.sql(`select ${S}.subscribe_subconsumer($1, $2, $3)`, [
        'coop_api',
        'order_worker',
        'worker-1',
      ]),
    ).toEqual([{ subscribe_subconsumer: 1 }]);
    expect(
      await db.sql(`select ${S}.subscribe_subconsumer($1, $2, $3)`, [
        'coop_api',
        'order_worker',
        'worker-1',
      ]),
    ).toEqual([{ subscribe_subconsumer: 0 }]);
    await db.sql(`select ${S}.send($1, $2::jsonb)`, ['coop_api', '{"a":1}']);
    await tick(db, 'coop_api');
    const rows = await db.sql(`select * from ${S}.receive_coop($1, $2, $3, $4, $5::interval)`, [
      'coop_api',
      'order_worker',
      'worker-1',
      100,
      '5 minutes',
    ]);
    expect(rows.map((r) => r.payload)).toEqual(['{"a": 1}']);
    expect(
      await db.sql(`select ${S}.touch_subconsumer($1, $2, $3)`, [
        'coop_api',
        'order_worker',
        'worker-1',
      ]),
    ).toEqual([{ touch_subconsumer: 1 }]);
    expect(
      await db.sql(`select ${S}.touch_subconsumer($1, $2, $3)`, [
        'coop_api',
        'order_worker',
        'nobody',
      ]),
    ).toEqual([{ touch_subconsumer: 0 }]);
    expect(
      (
        await fails(`select ${S}.unsubscribe_subconsumer($1, $2, $3, $4)`, [
          'coop_api',
          'order_worker',
          'worker-1',
          0,
        ])
      ).message,
    ).toBe(
      'cannot unregister active cooperative subconsumer coop_api/order_worker/worker-1 without batch_handling = 1',
    );
    expect(await db.sql(`select ${S}.ack($1)`, [rows[0]!.batch_id])).toEqual([{ ack: 1 }]);
    expect(
      await db.sql(`select ${S}.unsubscribe_subconsumer($1, $2, $3, $4)`, [
        'coop_api',
        'order_worker',
        'worker-1',
        1,
      ]),
    ).toEqual([{ unsubscribe_subconsumer: 1 }]);
    expect(
      await db.sql(`select ${S}.unsubscribe_subconsumer($1, $2, $3, $4)`, [
        'coop_api',
        'order_worker',
        'worker-1',
        1,
      ]),
    ).toEqual([{ unsubscribe_subconsumer: 0 }]);
    // the last member gone, the main is a normal consumer again
    const [sub] = await db.sql(
      `select sub_role from ${S}.subscription s join ${S}.consumer c on c.co_id = s.sub_consumer where c.co_name = 'order_worker'`,
    );
    expect(sub!.sub_role).toBe('normal');
  });
});

describe('queue management', () => {
  it('create_queue returns 1 then 0, measures names in bytes, notifies tick 1', async () => {
    const [listener] = await connections(db, 1);
    const got: string[] = [];
    listener!.on('notification', (n) => got.push(`${n.channel}:${n.payload}`));
    await listener!.query(`LISTEN "pgque_notified"`);
    expect(await db.sql(`select ${S}.create_queue('notified')`)).toEqual([{ create_queue: 1 }]);
    expect(await db.sql(`select ${S}.create_queue('notified')`)).toEqual([{ create_queue: 0 }]);
    expect(await db.sql(`select ${S}.create_queue($1)`, ['日'.repeat(19)])).toEqual([
      { create_queue: 1 },
    ]);
    const long = await fails(`select ${S}.create_queue($1)`, ['日'.repeat(20)]);
    expect(long).toEqual({
      code: 'P0001',
      message:
        "queue name too long: 60 bytes (max 57). pg_notify channel 'pgque_<queue_name>' must fit in 63 bytes.",
    });
    expect(
      await db.sql(`select count(*)::int as n from ${S}.queue where queue_name = $1`, [
        '日'.repeat(20),
      ]),
    ).toEqual([{ n: 0 }]);
    expect((await fails(`select ${S}.create_queue(NULL)`)).message).toBe('Invalid NULL value');
    const [t] = await db.sql(
      `select tick_id::int from ${S}.tick t join ${S}.queue q on q.queue_id = t.tick_queue where queue_name = 'notified'`,
    );
    expect(t).toEqual({ tick_id: 1 });
    await new Promise<void>((resolve) => {
      const check = (): void =>
        got.includes('pgque_notified:1') ? resolve() : void setTimeout(check, 10);
      check();
    });
  });

  it('drop_queue refuses attached consumers unless forced, and removes everything', async () => {
    await db.sql(`select ${S}.create_queue('dropme')`);
    await db.sql(
      `select ${S}.subscribe('dropme', 'd1'), ${S}.subscribe_subconsumer('dropme', 'grp', 'm1')`,
    );
    expect((await fails(`select ${S}.drop_queue('dropme')`)).message).toBe(
      'cannot drop queue, consumers still attached',
    );
    expect(await db.sql(`select ${S}.drop_queue('dropme', true)`)).toEqual([{ drop_queue: 1 }]);
    expect((await fails(`select ${S}.drop_queue('dropme')`)).message).toBe('No such event queue');
    expect(
      await db.sql(
        `select count(*)::int as n from ${S}.consumer where co_name in ('d1', 'grp', 'grp.m1')`,
      ),
    ).toEqual([{ n: 0 }]);
    expect(
      await db.sql(
        `select count(*)::int as n from pg_tables where schemaname = $1 and tablename ~ '^event_[0-9]+' and tablename not in (select 'event_' || queue_id from ${S}.queue) and tablename !~ ('^event_(' || (select coalesce(string_agg(queue_id::text, '|'), '0') from ${S}.queue) || ')_')`,
        [S],
      ),
    ).toEqual([{ n: 0 }]);
  });

  it('set_queue_config validates like the reference', async () => {
    await db.sql(`select ${S}.create_queue('cfg')`);
    expect(await db.sql(`select ${S}.set_queue_config('cfg', 'max_retries', '2')`)).toEqual([
      { set_queue_config: 1 },
    ]);
    expect(
      await db.sql(`select queue_max_retries from ${S}.queue where queue_name = 'cfg'`),
    ).toEqual([{ queue_max_retries: 2 }]);
    await db.sql(`select ${S}.set_queue_config('cfg', 'ticker_max_lag', NULL)`);
    expect(
      await db.sql(
        `select queue_ticker_max_lag::text as v from ${S}.queue where queue_name = 'cfg'`,
      ),
    ).toEqual([{ v: '00:00:03' }]);
    expect((await fails(`select ${S}.set_queue_config('cfg', 'bogus', '1')`)).message).toBe(
      'cannot change parameter "boguss"',
    );
    expect(
      (await fails(`select ${S}.set_queue_config('cfg', 'queue_max_retries', '1')`)).message,
    ).toBe('cannot change parameter "queue_max_retriess"');
    expect(await fails(`select ${S}.set_queue_config('cfg', 'ticker_max_count', 'abc')`)).toEqual({
      code: '22P02',
      message: 'invalid input syntax for type bigint: "abc"',
    });
    expect(
      (await fails(`select ${S}.set_queue_config('cfg', 'ticker_max_count', '0')`)).message,
    ).toBe('set_queue_config: ticker_max_count must be > 0, got 0');
    expect((await fails(`select ${S}.set_queue_config('cfg', 'max_retries', '-1')`)).message).toBe(
      'set_queue_config: max_retries must be >= 0, got -1',
    );
    expect((await fails(`select ${S}.set_queue_config('nope', 'max_retries', '1')`)).message).toBe(
      'No such event queue',
    );
    expect((await fails(`select ${S}.set_queue_config('cfg', NULL, '1')`)).message).toBe(
      'Invalid NULL value',
    );
  });
});

describe('producing', () => {
  it('text payloads are stored verbatim, NULL as NULL; send_batch ids line up with inputs', async () => {
    await db.sql(`select ${S}.create_queue('prod'), ${S}.subscribe('prod', 'p')`);
    await db.sql(
      `select ${S}.send('prod', 't', '{"b":1,  "a":2}'::text), ${S}.send('prod', 'not json'), ${S}.send('prod', 'x', NULL::jsonb)`,
    );
    const [b] = await db.sql<{ ids: string[] }>(
      `select ${S}.send_batch('prod', array['1','2','3']::text[]) as ids`,
    );
    expect(await db.sql(`select ${S}.send_batch('nope', '{}'::text[]) as ids`)).toEqual([
      { ids: [] },
    ]);
    expect((await fails(`select ${S}.send_batch('prod', NULL::text[])`)).message).toBe(
      'payloads must not be null',
    );
    expect((await fails(`select ${S}.send('nope', 'x')`)).message).toBe('queue not found: nope');
    await tick(db, 'prod');
    const rows = await db.sql(`select * from ${S}.receive('prod', 'p', 100)`);
    expect(rows.map((r) => [r.type, r.payload])).toEqual([
      ['t', '{"b":1,  "a":2}'],
      ['default', 'not json'],
      ['x', null],
      ['default', '1'],
      ['default', '2'],
      ['default', '3'],
    ]);
    expect(rows.slice(3).map((r) => String(r.msg_id))).toEqual(b!.ids);
    expect(new Set(rows.slice(3).map((r) => (r.created_at as Date).getTime())).size).toBe(1);
  });

  it('insert_event fills the extras; disabled queues refuse inserts', async () => {
    await db.sql(`select ${S}.create_queue('extras'), ${S}.subscribe('extras', 'x')`);
    await db.sql(`select ${S}.insert_event('extras', 'ty', 'da', 'e1', 'e2', 'e3', 'e4')`);
    await tick(db, 'extras');
    const [r] = await db.sql(
      `select type, payload, extra1, extra2, extra3, extra4 from ${S}.receive('extras', 'x')`,
    );
    expect(r).toEqual({
      type: 'ty',
      payload: 'da',
      extra1: 'e1',
      extra2: 'e2',
      extra3: 'e3',
      extra4: 'e4',
    });
    await db.sql(`select ${S}.set_queue_config('extras', 'disable_insert', 'true')`);
    expect((await fails(`select ${S}.send('extras', 'x')`)).message).toBe(
      'Insert into queue disallowed',
    );
  });
});

describe('consuming', () => {
  it('errors: unknown queue or consumer, bad max_return, nack of a foreign msg_id', async () => {
    await db.sql(`select ${S}.create_queue('cons'), ${S}.subscribe('cons', 'c')`);
    expect((await fails(`select * from ${S}.receive('cons', 'stranger')`)).message).toBe(
      'Not subscriber to queue: cons/stranger',
    );
    expect((await fails(`select * from ${S}.receive('nope', 'c')`)).message).toBe(
      'Not subscriber to queue: nope/c',
    );
    expect((await fails(`select * from ${S}.receive('cons', 'c', 0)`)).message).toBe(
      'pgque.receive: max_return must be >= 1, got 0',
    );
    expect((await fails(`select ${S}.subscribe('nope', 'c')`)).message).toBe(
      'Event queue not created yet',
    );
    expect((await fails(`select ${S}.subscribe('cons', NULL)`)).code).toBe('23502');
    await db.sql(`select ${S}.send('cons', 'a')`);
    await tick(db, 'cons');
    const [m] = await db.sql(`select * from ${S}.receive('cons', 'c')`);
    const nack = (id: unknown) =>
      fails(
        `select ${S}.nack($1, ROW($2, $1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::${S}.message)`,
        [m!.batch_id, id],
      );
    expect((await nack(424242)).message).toBe(`msg_id 424242 not found in batch ${m!.batch_id}`);
    expect((await nack(null)).message).toBe(`msg_id <NULL> not found in batch ${m!.batch_id}`);
    expect(
      (
        await fails(
          `select ${S}.nack(777777, ROW(1, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::${S}.message)`,
        )
      ).message,
    ).toBe('batch not found: 777777');
    expect(await db.sql(`select count(*)::int as n from ${S}.retry_queue`)).toEqual([{ n: 0 }]);
  });

  it('a new subscriber gets events sent before it subscribed that no tick has covered yet, and nothing earlier', async () => {
    await db.sql(`select ${S}.create_queue('late'), ${S}.subscribe('late', 'early')`);
    await db.sql(`select ${S}.send('late', 'before-tick')`);
    await tick(db, 'late');
    await db.sql(`select ${S}.send('late', 'after-tick')`);
    await db.sql(`select ${S}.subscribe('late', 'newcomer')`);
    await tick(db, 'late');
    expect(
      (await db.sql(`select payload from ${S}.receive('late', 'newcomer')`)).map((r) => r.payload),
    ).toEqual(['after-tick']);
  });

  it('an empty window is finished at once: no rows, cursor advanced, no open batch', async () => {
    await db.sql(`select ${S}.create_queue('emptywin'), ${S}.subscribe('emptywin', 'e')`);
    const t = await tick(db, 'emptywin');
    expect(await db.sql(`select * from ${S}.receive('emptywin', 'e')`)).toEqual([]);
    expect(
      await db.sql(
        `select last_tick::int, current_batch from ${S}.get_consumer_info('emptywin', 'e')`,
      ),
    ).toEqual([{ last_tick: t, current_batch: null }]);
    // no tick beyond the cursor: nothing, and no batch opened
    expect(await db.sql(`select ${S}.next_batch('emptywin', 'e') as b`)).toEqual([{ b: null }]);
  });

  it('each receive/ack cycle consumes exactly one tick window; ack finishes rows beyond max_return', async () => {
    await db.sql(`select ${S}.create_queue('windows'), ${S}.subscribe('windows', 'w')`);
    await db.sql(`select ${S}.send_batch('windows', array['a','b','c']::text[])`);
    await tick(db, 'windows');
    await db.sql(`select ${S}.send('windows', 'd')`);
    await tick(db, 'windows');
    const first = await db.sql(`select payload, batch_id from ${S}.receive('windows', 'w', 1)`);
    expect(first.map((r) => r.payload)).toEqual(['a']);
    await db.sql(`select ${S}.ack($1)`, [first[0]!.batch_id]);
    expect(
      (await db.sql(`select payload from ${S}.receive('windows', 'w')`)).map((r) => r.payload),
    ).toEqual(['d']);
  });

  it('a receive in a rolled-back transaction leaves no open batch', async () => {
    await db.sql(`select ${S}.create_queue('rb'), ${S}.subscribe('rb', 'r')`);
    await db.sql(`select ${S}.send('rb', 'x')`);
    await tick(db, 'rb');
    const [c] = await connections(db, 1);
    await c!.query('BEGIN');
    await c!.query(`select * from ${S}.receive('rb', 'r')`);
    await c!.query('ROLLBACK');
    expect(await db.sql(`select current_batch from ${S}.get_consumer_info('rb', 'r')`)).toEqual([
      { current_batch: null },
    ]);
  });

  it('PgQ primitives: next_batch, get_batch_events, finish_batch, event_retry, batch_retry, next_batch_custom', async () => {
    await db.sql(`select ${S}.create_queue('pgq'), ${S}.register_consumer('pgq', 'low')`);
    await db.sql(`select ${S}.send_batch('pgq', 'k', array['1','2']::text[])`);
    await tick(db, 'pgq');
    const [{ b }] = (await db.sql(`select ${S}.next_batch('pgq', 'low') as b`)) as [{ b: string }];
    const evs = await db.sql(`select * from ${S}.get_batch_events($1)`, [b]);
    expect(evs.map((e) => [e.ev_type, e.ev_data])).toEqual([
      ['k', '1'],
      ['k', '2'],
    ]);
    expect(typeof evs[0]!.ev_txid).toBe('string'); // bigint
    expect(await db.sql(`select ${S}.event_retry($1, $2, 0)`, [b, evs[0]!.ev_id])).toEqual([
      { event_retry: 1 },
    ]);
    expect(await db.sql(`select ${S}.event_retry($1, $2, 0)`, [b, evs[0]!.ev_id])).toEqual([
      { event_retry: 0 },
    ]);
    expect((await fails(`select ${S}.event_retry($1, 99999, 0)`, [b])).message).toBe(
      'event not found',
    );
    expect(await db.sql(`select ${S}.batch_retry($1, 0)`, [b])).toEqual([{ batch_retry: 1 }]);
    const [info] = await db.sql(
      `select queue_name, consumer_name, prev_tick_id::int, tick_id::int from ${S}.get_batch_info($1)`,
      [b],
    );
    expect(info).toEqual({ queue_name: 'pgq', consumer_name: 'low', prev_tick_id: 1, tick_id: 2 });
    expect(await db.sql(`select ${S}.finish_batch($1)`, [b])).toEqual([{ finish_batch: 1 }]);
    expect((await fails(`select * from ${S}.get_batch_events($1)`, [b])).message).toBe(
      'batch not found',
    );
    expect(await db.sql(`select queue_name from ${S}.get_batch_info($1)`, [b])).toEqual([
      { queue_name: null },
    ]);
    // next_batch_custom with min_count spans ticks until enough events
    await db.sql(`select ${S}.maint_retry_events()`);
    await tick(db, 'pgq'); // the two retries
    await tick(db, 'pgq'); // force_next_tick alone advances the sequence by 2000
    const [custom] = await db.sql(
      `select batch_id, cur_tick_id::int, prev_tick_id::int from ${S}.next_batch_custom('pgq', 'low', NULL, 3000, NULL)`,
    );
    expect(custom!.prev_tick_id).toBe(2);
    expect(custom!.cur_tick_id).toBe(4);
    const retried = await db.sql(`select ev_data, ev_retry from ${S}.get_batch_events($1)`, [
      custom!.batch_id,
    ]);
    expect(retried).toEqual([
      { ev_data: '1', ev_retry: 1 },
      { ev_data: '2', ev_retry: 1 },
    ]);
  });
});

describe('ticking', () => {
  it('follows the reference rule: second tick after create, then idle back-off; force makes a tick due', async () => {
    await db.sql(`select ${S}.create_queue('tk')`);
    expect(await db.sql(`select ${S}.ticker('tk')::int as t`)).toEqual([{ t: 2 }]);
    expect(await db.sql(`select ${S}.ticker('tk') as t`)).toEqual([{ t: null }]);
    await db.sql(`select ${S}.send('tk', 'x')`);
    expect(await db.sql(`select ${S}.ticker('tk') as t`)).toEqual([{ t: null }]); // 1 event < 500, lag < 3 s
    expect(await db.sql(`select ${S}.force_next_tick('tk')::int as t`)).toEqual([{ t: 2 }]);
    expect(await db.sql(`select ${S}.ticker('tk')::int as t`)).toEqual([{ t: 3 }]);
    await db.sql(`select ${S}.set_queue_config('tk', 'ticker_paused', 'true')`);
    expect((await fails(`select ${S}.ticker('tk')`)).message).toBe(
      'Ticker has been paused for this queue',
    );
    expect((await fails(`select ${S}.force_next_tick('tk')`)).message).toBe(
      'queue tk is paused (queue_ticker_paused = true)',
    );
    expect((await fails(`select ${S}.ticker('nope')`)).message).toBe('no such queue');
    await db.sql(`select ${S}.set_queue_config('tk', 'ticker_paused', NULL)`);
    await db.sql(`select ${S}.set_queue_config('tk', 'external_ticker', 'true')`);
    expect((await fails(`select ${S}.ticker('tk')`)).message).toBe(
      'This queue has external tick source.',
    );
    expect(await db.sql(`select ${S}.ticker('tk', 10, now(), 5000)::int as t`)).toEqual([
      { t: 10 },
    ]);
    expect((await fails(`select ${S}.ticker('tk', 10, now(), 5000)`)).message).toBe(
      'external ticker tick_id must be strictly greater than current max (10 <= 10)',
    );
    expect((await fails(`select ${S}.ticker('tk', 11, now(), 4999)`)).message).toBe(
      'external ticker event_seq must be >= previous tick (4999 < 5000)',
    );
  });

  it('a tick in the same transaction as a send never includes that send, even when another session commits in between', async () => {
    await db.sql(`select ${S}.create_queue('sametx'), ${S}.subscribe('sametx', 's')`);
    const [a, b] = await connections(db, 2);
    for (let round = 0; round < 5; round++) {
      await a!.query('BEGIN');
      const [{ send: mine }] = (await a!.query(`select ${S}.send('sametx', 'mine')`)).rows as [
        { send: string },
      ];
      // a later transaction commits between the send and the tick
      await b!.query(`select ${S}.send('sametx', 'other')`);
      await a!.query(`select ${S}.force_next_tick('sametx')`);
      await a!.query(`select ${S}.ticker('sametx')`);
      const inTx = (await a!.query(`select * from ${S}.receive('sametx', 's')`)).rows;
      expect(inTx.map((r) => r.msg_id)).not.toContain(mine);
      await a!.query('COMMIT');
      if (inTx.length) await db.sql(`select ${S}.ack($1)`, [inTx[0]!.batch_id]);
      await tick(db, 'sametx');
      const later = await db.sql(`select * from ${S}.receive('sametx', 's')`);
      expect(later.map((r) => r.msg_id)).toContain(mine);
      await db.sql(`select ${S}.ack($1)`, [later[0]!.batch_id]);
    }
  });
});

describe('status', () => {
  it('get_queue_info, get_consumer_info, version, status', async () => {
    await db.sql(
      `select ${S}.create_queue('st'), ${S}.subscribe('st', 'c1'), ${S}.subscribe_subconsumer('st', 'g', 'm')`,
    );
    await db.sql(`select ${S}.send('st', 'x')`);
    const [qi] = await db.sql(
      `select queue_name, queue_ntables, ev_new::int, last_tick_id::int from ${S}.get_queue_info('st')`,
    );
    // The reference reads an unused sequence as 1 (its last_value): create_queue's
    // tick recorded 1, so the first event is no growth yet.
    expect(qi).toEqual({ queue_name: 'st', queue_ntables: 3, ev_new: 0, last_tick_id: 1 });
    await db.sql(`select ${S}.send('st', 'y')`);
    const [qi2] = await db.sql(`select ev_new::int from ${S}.get_queue_info('st')`);
    expect(qi2).toEqual({ ev_new: 1 });
    expect(await db.sql(`select * from ${S}.get_queue_info('nope')`)).toEqual([]);
    const ci = await db.sql(`select consumer_name from ${S}.get_consumer_info('st')`);
    expect(ci.map((r) => r.consumer_name)).toEqual(['c1', 'g', 'g.m']);
    expect(await db.sql(`select ${S}.version()`)).toEqual([{ version: '0.2.0' }]);
    const st = await db.sql(`select component, status from ${S}.status()`);
    expect(st.map((r) => r.component)).toEqual([
      'postgresql',
      'pgque',
      'scheduler',
      'ticker',
      'maintenance',
      'pg_cron',
      'pg_timetable',
      'queues',
      'consumers',
    ]);
    expect(st[2]!.status).toBe('manual');
    expect((await fails(`select ${S}.start()`)).message).toMatch(
      /^pg_cron extension is not installed\./,
    );
    await db.sql(`select ${S}.stop()`);
    expect(await db.sql(`select ${S}.set_tick_period_ms(50)`)).toEqual([
      { set_tick_period_ms: 50 },
    ]);
    expect((await fails(`select ${S}.set_tick_period_ms(7)`)).message).toBe(
      'tick_period_ms must be an exact divisor of 1000 between 1 and 1000 (got 7)',
    );
  });
});
