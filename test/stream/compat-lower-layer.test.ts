// PgQ's lower layer and the cooperative/batch state machine, against PgQue
// 0.2.0: each test pins one reference behaviour that pgferry used to miss.
import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { useTestDatabase } from '../support/db.js';
import { expectSqlError } from '../support/sql-errors.js';
import { S, tick } from './helpers.js';

const db = useTestDatabase();

interface SubRow {
  sub_last_tick: string | null;
  sub_next_tick: string | null;
  sub_batch: string | null;
  sub_active: Date;
  sub_role: string;
}

async function sub(queue: string, consumer: string): Promise<SubRow> {
  const [r] = await db.sql<SubRow & pg.QueryResultRow>(
    `SELECT s.sub_last_tick, s.sub_next_tick, s.sub_batch, s.sub_active, s.sub_role
       FROM ${S}.subscription s JOIN ${S}.queue q ON q.queue_id = s.sub_queue
       JOIN ${S}.consumer c ON c.co_id = s.sub_consumer
      WHERE q.queue_name = $1 AND c.co_name = $2`,
    [queue, consumer],
  );
  expect(r, `${queue}/${consumer} is subscribed`).toBeDefined();
  return r!;
}

/** Runs `fn` in a transaction on a connection of its own (rolled back if `fn` throws). */
async function inTransaction(fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    await fn(c);
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK');
    throw err;
  } finally {
    c.release();
  }
}

/** A member 'g.a' (of group 'g') holding a batch with one event; returns the batch id. */
async function memberWithBatch(queue: string): Promise<string> {
  await db.sql(`SELECT ${S}.create_queue($1), ${S}.register_subconsumer($1, 'g', 'a')`, [queue]);
  await db.sql(`SELECT ${S}.send($1, 'x'::text)`, [queue]);
  await tick(db, queue);
  const rows = await db.sql<{ batch_id: string }>(
    `SELECT * FROM ${S}.receive_coop($1, 'g', 'a', 100, NULL)`,
    [queue],
  );
  expect(rows).toHaveLength(1);
  return rows[0]!.batch_id;
}

describe('ticker (PgQue §5)', () => {
  it('ticks the first event of a new queue at once: an unused event sequence reads as 1, like its last_value', async () => {
    await db.sql(`SELECT ${S}.create_queue('first'), ${S}.subscribe('first', 'c')`);
    const [t1] = await db.sql<{ s: string }>(
      `SELECT tick_event_seq AS s FROM ${S}.tick t JOIN ${S}.queue q ON q.queue_id = t.tick_queue
        WHERE q.queue_name = 'first'`,
    );
    expect(t1!.s).toBe('1');
    await db.sql(`SELECT ${S}.send('first', 'e1'::text)`);
    // One tick so far and no growth past it: the idle rule ticks now, no 3 s wait.
    const [r] = await db.sql<{ t: string | null }>(`SELECT ${S}.ticker('first') AS t`);
    expect(r!.t).toBe('2');
    const [b] = await db.sql<{ b: string | null }>(`SELECT ${S}.next_batch('first', 'c') AS b`);
    expect(b!.b).not.toBeNull();
    const ev = await db.sql<{ ev_data: string }>(`SELECT ev_data FROM ${S}.get_batch_events($1)`, [
      b!.b,
    ]);
    expect(ev.map((e) => e.ev_data)).toEqual(['e1']);
  });

  it('ticker(queue) reports an external tick source before a paused ticker', async () => {
    await db.sql(`SELECT ${S}.create_queue('extpaused')`);
    await db.sql(`SELECT ${S}.set_queue_config('extpaused', 'external_ticker', 'true')`);
    await db.sql(`SELECT ${S}.set_queue_config('extpaused', 'ticker_paused', 'true')`);
    await expectSqlError(
      db.sql(`SELECT ${S}.ticker('extpaused')`),
      'P0001',
      'This queue has external tick source.',
    );
  });

  it('the external ticker moves the event-id sequence up to the pushed event_seq', async () => {
    await db.sql(`SELECT ${S}.create_queue('extseq')`);
    await db.sql(`SELECT ${S}.set_queue_config('extseq', 'external_ticker', 'true')`);
    await db.sql(`SELECT ${S}.ticker('extseq', 2, now(), 5000)`);
    const [r] = await db.sql<{ id: string }>(`SELECT ${S}.send('extseq', 'x'::text) AS id`);
    expect(r!.id).toBe('5001');
    // Never back: a lower event_seq (still >= the previous tick's) leaves it.
    await db.sql(`SELECT ${S}.ticker('extseq', 3, now(), 5000)`);
    const [r2] = await db.sql<{ id: string }>(`SELECT ${S}.send('extseq', 'y'::text) AS id`);
    expect(r2!.id).toBe('5002');
  });

  it('force_next_tick advances the sequence from nextval by 2 × ticker_max_count + 1000', async () => {
    await db.sql(`SELECT ${S}.create_queue('force')`);
    const [a] = await db.sql<{ id: string }>(`SELECT ${S}.send('force', 'a'::text) AS id`);
    expect(a!.id).toBe('1');
    await db.sql(`SELECT ${S}.force_next_tick('force')`);
    const [b] = await db.sql<{ id: string }>(`SELECT ${S}.send('force', 'b'::text) AS id`);
    // nextval gives 2, setval(2 + 2000): the next id is 2003.
    expect(b!.id).toBe('2003');
  });
});

describe('PgQ primitives (PgQue §6.5, §3)', () => {
  it('event_retry on a batch that is not active raises get_batch_events\u2019 "batch not found"', async () => {
    await db.sql(`SELECT ${S}.create_queue('evr'), ${S}.subscribe('evr', 'c')`);
    await db.sql(`SELECT ${S}.send('evr', 'x'::text)`);
    await tick(db, 'evr');
    const [m] = await db.sql<{ batch_id: string; msg_id: string }>(
      `SELECT * FROM ${S}.receive('evr', 'c', 10)`,
    );
    await db.sql(`SELECT ${S}.ack($1)`, [m!.batch_id]);
    await expectSqlError(
      db.sql(`SELECT ${S}.event_retry($1, $2, 60)`, [m!.batch_id, m!.msg_id]),
      'P0001',
      'batch not found',
    );
  });

  it('retry rows carry no ev_txid (the event gets the moving transaction\u2019s id)', async () => {
    await db.sql(`SELECT ${S}.create_queue('rtx'), ${S}.subscribe('rtx', 'c')`);
    await db.sql(`SELECT ${S}.send('rtx', 'x'::text)`);
    await tick(db, 'rtx');
    const [m] = await db.sql<{ batch_id: string; msg_id: string }>(
      `SELECT * FROM ${S}.receive('rtx', 'c', 10)`,
    );
    await db.sql(`SELECT ${S}.event_retry($1, $2, 60)`, [m!.batch_id, m!.msg_id]);
    const rows = await db.sql<{ ev_txid: string | null }>(
      `SELECT r.ev_txid FROM ${S}.retry_queue r JOIN ${S}.queue q ON q.queue_id = r.ev_queue
        WHERE q.queue_name = 'rtx'`,
    );
    expect(rows).toEqual([{ ev_txid: null }]);
  });

  it('receive and receive_coop with a NULL max_return return the whole batch (only < 1 is refused)', async () => {
    await db.sql(`SELECT ${S}.create_queue('nullmax'), ${S}.subscribe('nullmax', 'c')`);
    await db.sql(`SELECT ${S}.register_subconsumer('nullmax', 'g', 'a')`);
    await db.sql(`SELECT ${S}.send_batch('nullmax', array['a', 'b', 'c']::text[])`);
    await tick(db, 'nullmax');
    expect(await db.sql(`SELECT * FROM ${S}.receive('nullmax', 'c', NULL)`)).toHaveLength(3);
    expect(
      await db.sql(`SELECT * FROM ${S}.receive_coop('nullmax', 'g', 'a', NULL, NULL)`),
    ).toHaveLength(3);
    await expectSqlError(
      db.sql(`SELECT * FROM ${S}.receive('nullmax', 'c', 0)`),
      'P0001',
      'pgque.receive: max_return must be >= 1, got 0',
    );
  });

  it('drop_queue(NULL) returns NULL (the 1-argument form is STRICT)', async () => {
    const [r] = await db.sql<{ r: number | null }>(`SELECT ${S}.drop_queue(NULL) AS r`);
    expect(r!.r).toBeNull();
  });
});

describe('cooperative/batch state machine (PgQue §6.3, §7)', () => {
  it('ack of a member batch clears the member\u2019s sub_last_tick to NULL', async () => {
    const batch = await memberWithBatch('ackm');
    expect((await sub('ackm', 'g.a')).sub_last_tick).not.toBeNull();
    const [r] = await db.sql<{ r: number }>(`SELECT ${S}.ack($1) AS r`, [batch]);
    expect(r!.r).toBe(1);
    const m = await sub('ackm', 'g.a');
    expect([m.sub_last_tick, m.sub_next_tick, m.sub_batch]).toEqual([null, null, null]);
  });

  it('finish_batch of a member batch clears the member\u2019s sub_last_tick to NULL', async () => {
    const batch = await memberWithBatch('finm');
    const [r] = await db.sql<{ r: number }>(`SELECT ${S}.finish_batch($1) AS r`, [batch]);
    expect(r!.r).toBe(1);
    expect((await sub('finm', 'g.a')).sub_last_tick).toBeNull();
  });

  it('a member registers without a cursor and an empty window releases it the same way', async () => {
    await db.sql(
      `SELECT ${S}.create_queue('emptym'), ${S}.register_subconsumer('emptym', 'g', 'a')`,
    );
    expect((await sub('emptym', 'g.a')).sub_last_tick).toBeNull();
    await tick(db, 'emptym');
    expect(await db.sql(`SELECT * FROM ${S}.receive_coop('emptym', 'g', 'a', 100, NULL)`)).toEqual(
      [],
    );
    const m = await sub('emptym', 'g.a');
    expect([m.sub_last_tick, m.sub_batch]).toEqual([null, null]);
  });

  it('finish_batch and ack refuse a batch on the cooperative main row and leave it intact', async () => {
    await db.sql(`SELECT ${S}.create_queue('mainb'), ${S}.register_subconsumer('mainb', 'g', 'a')`);
    await tick(db, 'mainb');
    // The API never opens a batch on a main row with members; put one there by hand.
    const [b] = await db.sql<{ b: string }>(
      `UPDATE ${S}.subscription s SET sub_batch = nextval('${S}.batch_id_seq'),
              sub_next_tick = (SELECT max(tick_id) FROM ${S}.tick WHERE tick_queue = s.sub_queue)
        WHERE s.sub_role = 'coop_main'
          AND s.sub_queue = (SELECT queue_id FROM ${S}.queue WHERE queue_name = 'mainb')
       RETURNING sub_batch AS b`,
    );
    const before = await sub('mainb', 'g');
    for (const fn of ['finish_batch', 'ack']) {
      await expectSqlError(
        db.sql(`SELECT ${S}.${fn}($1)`, [b!.b]),
        'P0001',
        `cannot finish cooperative main consumer batch ${b!.b} as normal active consumer`,
      );
    }
    expect(await sub('mainb', 'g')).toEqual(before);
  });

  it('touch_subconsumer moves the heartbeat on every call, also twice in one transaction', async () => {
    await db.sql(`SELECT ${S}.create_queue('touch'), ${S}.register_subconsumer('touch', 'g', 'a')`);
    await inTransaction(async (c) => {
      const active = async () => {
        expect(
          (await c.query(`SELECT ${S}.touch_subconsumer('touch', 'g', 'a') AS n`)).rows[0].n,
        ).toBe(1);
        return (
          await c.query(
            `SELECT s.sub_active FROM ${S}.subscription s JOIN ${S}.consumer c ON c.co_id = s.sub_consumer
              JOIN ${S}.queue q ON q.queue_id = s.sub_queue
              WHERE c.co_name = 'g.a' AND q.queue_name = 'touch'`,
          )
        ).rows[0].sub_active as Date;
      };
      const first = await active();
      await c.query('SELECT pg_sleep(0.01)');
      const second = await active();
      expect(second.getTime()).toBeGreaterThan(first.getTime());
    });
  });

  it('touch_subconsumer validates names like every cooperative function', async () => {
    await expectSqlError(
      db.sql(`SELECT ${S}.touch_subconsumer('', 'g', 'a')`),
      'P0001',
      'queue name must not be empty',
    );
    await expectSqlError(
      db.sql(`SELECT ${S}.touch_subconsumer('touch', 'g', 'a.b')`),
      'P0001',
      'cooperative subconsumer name must not contain dot: a.b',
    );
  });

  it('register_subconsumer refuses a member name already held by a normal consumer', async () => {
    await db.sql(`SELECT ${S}.create_queue('incompat'), ${S}.subscribe('incompat', 'inc.a')`);
    await expectSqlError(
      db.sql(`SELECT ${S}.register_subconsumer('incompat', 'inc', 'a')`),
      'P0001',
      'consumer name inc.a on queue incompat is already registered incompatibly',
    );
    expect((await sub('incompat', 'inc.a')).sub_role).toBe('normal');
    // Consumer names are global: the refused call left no main consumer behind.
    const [n] = await db.sql<{ n: string }>(
      `SELECT count(*) AS n FROM ${S}.consumer WHERE co_name = 'inc'`,
    );
    expect(n!.n).toBe('0');
  });

  it('a takeover releases the stale member: its ticks go back to NULL and its heartbeat moves', async () => {
    await db.sql(`SELECT ${S}.create_queue('take'), ${S}.register_subconsumer('take', 'g', 'b')`);
    const old = await memberWithBatch('take');
    const stale = await sub('take', 'g.a');
    const rows = await db.sql<{ batch_id: string }>(
      `SELECT * FROM ${S}.receive_coop('take', 'g', 'b', 100, '0 seconds')`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.batch_id).not.toBe(old);
    const a = await sub('take', 'g.a');
    expect([a.sub_last_tick, a.sub_next_tick, a.sub_batch]).toEqual([null, null, null]);
    expect(a.sub_active.getTime()).toBeGreaterThan(stale.sub_active.getTime());
  });

  it('unregister_subconsumer checks batch_handling before looking anything up', async () => {
    await db.sql(`SELECT ${S}.create_queue('unreg')`);
    for (const q of ['unreg', 'no_such_queue']) {
      await expectSqlError(
        db.sql(`SELECT ${S}.unregister_subconsumer($1, 'g', 'ghost', 2)`, [q]),
        'P0001',
        'unsupported batch_handling value: 2',
      );
    }
  });

  it('the last member leaving turns the main row normal and refreshes its activity time', async () => {
    await db.sql(`SELECT ${S}.create_queue('lastm'), ${S}.register_subconsumer('lastm', 'g', 'a')`);
    await inTransaction(async (c) => {
      await c.query(`SELECT ${S}.unregister_subconsumer('lastm', 'g', 'a')`);
      const r = (
        await c.query(
          `SELECT s.sub_role, s.sub_active = now() AS fresh FROM ${S}.subscription s
             JOIN ${S}.consumer c ON c.co_id = s.sub_consumer WHERE c.co_name = 'g'
              AND s.sub_queue = (SELECT queue_id FROM ${S}.queue WHERE queue_name = 'lastm')`,
        )
      ).rows[0];
      expect(r).toEqual({ sub_role: 'normal', fresh: true });
    });
  });
});
