import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { eventually, useTestDatabase } from '../support/db.js';
import { wakeChannel } from '../../src/bus/index.js';
import { makeBusLogin } from './helpers.js';
import { testPool } from '../support/connections.js';

// The facts of the wire contract pipecat's IsolatedPgmqBackend relies on
// (positional calls, the message as JSON text cast to jsonb), checked on
// several real connections of the bus role.
const db = useTestDatabase();
let login: Awaited<ReturnType<typeof makeBusLogin>>;
let pool: pg.Pool;

beforeAll(async () => {
  login = await makeBusLogin(db.url);
  pool = testPool({ connectionString: login.url, max: 8 });
});

afterAll(async () => {
  await pool?.end();
  await login?.drop();
});

const join = async (ch: string): Promise<string> =>
  (await pool.query<{ q: string }>('SELECT public.bus_join($1) AS q', [ch])).rows[0]!.q;

describe('bus wire contract', () => {
  it("has pipecat's five signatures unchanged, plus the two headers functions (bus 0004) bus_archive_many and bus_read (bus 0005) and bus_peek (bus 0007)", async () => {
    const rows = await db.sql<{ sig: string; result: string }>(
      `SELECT p.oid::regprocedure::text AS sig, pg_get_function_result(p.oid) AS result
         FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'bus\\_%' ORDER BY 1`,
    );
    expect(rows).toEqual([
      { sig: 'bus_archive(text,text,bigint)', result: 'boolean' },
      { sig: 'bus_archive_many(text,text,bigint[])', result: 'SETOF bigint' },
      { sig: 'bus_join(text)', result: 'text' },
      { sig: 'bus_leave(text,text)', result: 'void' },
      {
        sig: 'bus_peek(text,text,integer,bigint[],bigint[])',
        result: 'TABLE(msg_id bigint, message jsonb, headers jsonb)',
      },
      { sig: 'bus_publish(text,text,jsonb)', result: 'bigint[]' },
      { sig: 'bus_publish(text,text,jsonb,jsonb)', result: 'bigint[]' },
      {
        sig: 'bus_read(text,text,integer,integer,bigint[])',
        result: 'TABLE(msg_id bigint, message jsonb, headers jsonb)',
      },
      {
        sig: 'bus_subscribe(text,text,integer,integer,integer)',
        result: 'TABLE(msg_id bigint, message jsonb)',
      },
      {
        sig: 'bus_subscribe_with_headers(text,text,integer,integer,integer)',
        result: 'TABLE(msg_id bigint, message jsonb, headers jsonb)',
      },
    ]);
    const args = await db.sql<{ args: string }>(
      `SELECT pg_get_function_arguments(p.oid) AS args FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'bus\\_%' ORDER BY p.oid::regprocedure::text`,
    );
    expect(args.map((a) => a.args)).toEqual([
      'p_my_queue text, p_channel text, p_msg_id bigint',
      'p_my_queue text, p_channel text, p_msg_ids bigint[]',
      'p_channel text',
      'p_my_queue text, p_channel text',
      'p_my_queue text, p_channel text, p_qty integer, p_archive bigint[], p_skip bigint[]',
      'p_channel text, p_my_queue text, p_message jsonb',
      // No DEFAULT: a three-argument call never has two candidates.
      'p_channel text, p_my_queue text, p_message jsonb, p_headers jsonb',
      'p_my_queue text, p_channel text, p_vt integer, p_qty integer, p_archive bigint[]',
      'p_my_queue text, p_channel text, p_vt integer, p_qty integer, p_max_seconds integer',
      'p_my_queue text, p_channel text, p_vt integer, p_qty integer, p_max_seconds integer',
    ]);
  });

  it('bus_subscribe really waits and returns at once when a message arrives', async () => {
    const a = await join('wait');
    const b = await join('wait');
    const t0 = Date.now();
    const empty = await pool.query(`SELECT * FROM public.bus_subscribe($1, 'wait', 30, 10, 1)`, [
      b,
    ]);
    expect(empty.rows).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);

    let sentAt = 0;
    const waiting = pool
      .query(`SELECT * FROM public.bus_subscribe($1, 'wait', 30, 10, 20)`, [b])
      .then((r) => ({ r, at: Date.now() }));
    // Publish once the subscriber is really inside its wait (seen in pg_stat_activity).
    await eventually(
      async () =>
        (
          await db.sql(
            `SELECT 1 FROM pg_stat_activity WHERE query LIKE '%bus_subscribe%20)' AND wait_event = 'PgSleep'`,
          )
        ).length > 0,
    );
    sentAt = Date.now();
    await pool.query(`SELECT public.bus_publish('wait', $1, $2::jsonb)`, [
      a,
      JSON.stringify({ hello: 'world' }),
    ]);
    const { r, at } = await waiting;
    expect(r.rows.map((x) => x.message)).toEqual([{ hello: 'world' }]);
    expect(at - sentAt).toBeLessThan(1000);
  });

  it('bus_subscribe hides messages for p_vt seconds and returns at most p_qty, oldest first', async () => {
    const a = await join('vt');
    const b = await join('vt');
    for (let i = 0; i < 5; i++)
      await pool.query(`SELECT public.bus_publish('vt', $1, $2::jsonb)`, [
        a,
        JSON.stringify({ i }),
      ]);
    const first = await pool.query(`SELECT * FROM public.bus_subscribe($1, 'vt', 60, 3, 0)`, [b]);
    expect(first.rows.map((r) => r.message.i)).toEqual([0, 1, 2]);
    const vt = await db.sql<{ secs: number }>(
      `SELECT round(extract(epoch FROM vt - now()))::int AS secs FROM ${db.queueSchema}.q_${b} WHERE read_ct = 1 LIMIT 1`,
    );
    expect(vt[0]!.secs).toBeGreaterThanOrEqual(58);
    const second = await pool.query(`SELECT * FROM public.bus_subscribe($1, 'vt', 0, 10, 0)`, [b]);
    expect(second.rows.map((r) => r.message.i)).toEqual([3, 4]);
    // vt 0: visible again at once.
    const again = await pool.query(`SELECT * FROM public.bus_subscribe($1, 'vt', 0, 10, 0)`, [b]);
    expect(again.rows.map((r) => r.message.i)).toEqual([3, 4]);
  });

  it('bus_publish never fails while members join and leave concurrently', async () => {
    const ch = 'churn';
    const sender = await join(ch);
    const stable = await join(ch);
    let stop = false;
    let churned = 0;
    const churn = async (): Promise<void> => {
      while (!stop) {
        const q = await join(ch);
        await pool.query(`SELECT public.bus_leave($1, $2)`, [q, ch]);
        churned++;
      }
    };
    const churners = [churn(), churn(), churn()];
    let published = 0;
    const errors: unknown[] = [];
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline || churned < 20) {
      try {
        const ids = (
          await pool.query(`SELECT public.bus_publish($1, $2, '{"n":1}') AS ids`, [ch, sender])
        ).rows[0].ids as string[];
        expect(ids.length).toBeGreaterThanOrEqual(1);
        published++;
      } catch (err) {
        errors.push(err);
      }
    }
    stop = true;
    await Promise.all(churners);
    expect(errors).toEqual([]);
    expect(published).toBeGreaterThan(0);
    const n = await db.sql<{ n: string }>(
      `SELECT count(*) AS n FROM ${db.queueSchema}.q_${stable}`,
    );
    expect(Number(n[0]!.n)).toBe(published);
    // Every churned queue is gone.
    const left = await db.sql<{ n: string }>(
      `SELECT count(*) AS n FROM public._pgferry_bus_member`,
    );
    const queues = await db.sql<{ n: string }>(
      `SELECT count(*) AS n FROM ${db.queueSchema}.meta WHERE queue_name LIKE 'bus\\_%'`,
    );
    expect(Number(queues[0]!.n)).toBe(Number(left[0]!.n));
  });

  it('the wake channel TypeScript listens on is the one the SQL notifies', async () => {
    for (const [q, ch] of [
      ['bus_abc', 'pipecat:acme/v2'],
      ['x', 'ünïcödé \' " %'],
      ['y', ''],
    ]) {
      const rows = await db.sql<{ c: string }>(
        `SELECT public._pgferry_bus_wake_channel($1, $2) AS c`,
        [q, ch],
      );
      expect(rows[0]!.c).toBe(wakeChannel(q!, ch!));
    }
  });
});
