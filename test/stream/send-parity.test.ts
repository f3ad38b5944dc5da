// StreamClient's prepared producing path (src/stream/statements.ts) against
// PgQue's SQL functions send / send_batch, the contract: the same inputs give
// the same ids and the same event rows, the same NOTIFY to a waiting
// consumer (and none without one), the same errors with nothing written, a
// rotated event table is followed, a role that may only EXECUTE the
// functions is served by them, and ev_extra4 (the trace context) is written
// as insert_event writes it.
import { afterAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { useTestDatabase } from '../support/db.js';
import { StreamClient } from '../../src/stream/index.js';
import { StreamStatements } from '../../src/stream/statements.js';
import { S, connections } from './helpers.js';

const db = useTestDatabase();
const client = new StreamClient({ connectionString: db.url });
afterAll(() => client.close());

const PAYLOADS: unknown[] = [{ b: 2, a: [1, 'x'] }, null, 'text', 42, { nested: { k: true } }];

/** Every event row of a stream, in id order, without ev_time / ev_txid (checked per transaction below). */
async function events(stream: string): Promise<Record<string, unknown>[]> {
  const [q] = await db.sql<{ id: number }>(
    `SELECT queue_id AS id FROM ${S}.queue WHERE queue_name = $1`,
    [stream],
  );
  return db.sql(
    `SELECT ev_id::int, ev_type, ev_data, ev_owner, ev_retry, ev_extra1, ev_extra2, ev_extra3, ev_extra4
       FROM ${S}.event_${q!.id} ORDER BY ev_id`,
  );
}

/** The same sequence of sends, through `send` / `sendBatch` (one function per path). */
async function produce(
  stream: string,
  one: (payload: unknown, type: string | null | undefined) => Promise<number>,
  many: (payloads: unknown[], type: string | null | undefined) => Promise<number[]>,
): Promise<number[]> {
  const ids: number[] = [];
  ids.push(await one(PAYLOADS[0], 'order.created'));
  ids.push(await one(null, undefined));
  ids.push(await one(PAYLOADS[2], null));
  ids.push(...(await many(PAYLOADS, 'batch')));
  ids.push(...(await many([], 'empty')));
  ids.push(...(await many([null], undefined)));
  return ids;
}

const sqlType = (t: string | null | undefined): string | null => (t === undefined ? 'default' : t);

describe('stream send: the prepared path gives what send() / send_batch() give', () => {
  it('same ids, same rows, one statement per call', async () => {
    await client.createStream('par_ts');
    await client.createStream('par_sql');
    const statements = new StreamStatements(S);
    // The prepared path itself answers (null would mean "use the function").
    const direct = await statements.send(db.pool, 'par_ts', 'probe', '{"p":1}');
    expect(direct).toBe(1);
    await db.sql(`SELECT ${S}.send('par_sql', 'probe', '{"p":1}'::jsonb)`);

    const ts = await produce(
      'par_ts',
      (p, type) => client.send('par_ts', p, { type }),
      (ps, type) => client.sendBatch('par_ts', ps, { type }),
    );
    const sql = await produce(
      'par_sql',
      async (p, type) =>
        Number(
          (
            await db.sql<{ id: string }>(`SELECT ${S}.send('par_sql', $1, $2::jsonb) AS id`, [
              sqlType(type),
              p === null ? null : JSON.stringify(p),
            ])
          )[0]!.id,
        ),
      async (ps, type) =>
        (
          await db.sql<{ ids: string[] }>(
            `SELECT ${S}.send_batch('par_sql', $1, $2::jsonb[]) AS ids`,
            [sqlType(type), ps.map((p) => (p === null ? null : JSON.stringify(p)))],
          )
        )[0]!.ids.map(Number),
    );
    expect(ts).toEqual(sql);
    expect(ts).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const rowsTs = await events('par_ts');
    expect(rowsTs).toEqual(await events('par_sql'));
    expect(rowsTs.find((r) => r.ev_id === 2)!.ev_data).toBe('{"a": [1, "x"], "b": 2}'); // jsonb::text
  });

  it('ev_extra4 (the trace context): the prepared path writes what insert_event writes', async () => {
    await client.createStream('par_x_ts');
    await client.createStream('par_x_sql');
    const statements = new StreamStatements(S);
    const ctx = '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}';
    const data = ['{"a": 1}', null, '"t"'];
    expect(await statements.send(db.pool, 'par_x_ts', 'one', '{"z":0}', ctx)).toBe(1);
    expect(await statements.sendBatch(db.pool, 'par_x_ts', 'many', data, ctx)).toEqual([2, 3, 4]);
    const insert = (type: string, d: string | null): Promise<unknown> =>
      db.sql(`SELECT ${S}.insert_event('par_x_sql', $1, $2::jsonb::text, NULL, NULL, NULL, $3)`, [
        type,
        d,
        ctx,
      ]);
    await insert('one', '{"z":0}');
    for (const d of data) await insert('many', d);
    const rows = await events('par_x_ts');
    expect(rows).toEqual(await events('par_x_sql'));
    expect(rows.map((r) => r.ev_extra4)).toEqual([ctx, ctx, ctx, ctx]);
  });

  it('a large batch: every id names its own payload, ids in input order', async () => {
    await client.createStream('par_big_ts');
    await client.createStream('par_big_sql');
    // Payloads whose order a sort by value would change.
    const payloads = Array.from({ length: 500 }, (_, i) => ({ k: (i * 7919) % 500, i }));
    const ts = await client.sendBatch('par_big_ts', payloads, { type: 'big' });
    const sql = (
      await db.sql<{ ids: string[] }>(
        `SELECT ${S}.send_batch('par_big_sql', 'big', $1::jsonb[]) AS ids`,
        [payloads.map((p) => JSON.stringify(p))],
      )
    )[0]!.ids.map(Number);
    expect(ts).toEqual(sql);
    const rows = await events('par_big_ts');
    expect(rows).toEqual(await events('par_big_sql'));
    rows.forEach((r, n) => {
      expect(r.ev_id).toBe(ts[n]);
      expect(JSON.parse(r.ev_data as string)).toEqual(payloads[n]);
    });
  });

  it('in one transaction: ev_time is its now(), ev_txid its id, for both paths', async () => {
    await client.createStream('par_tx');
    const got = await client.transaction(async (tx) => {
      await client.send('par_tx', { a: 1 }, { tx });
      await client.sendBatch('par_tx', [{ b: 1 }, { b: 2 }], { tx });
      await tx.query(`SELECT ${S}.send('par_tx', '{"c":1}'::jsonb)`);
      return (
        await tx.query<{ same: boolean }>(
          `SELECT bool_and(ev_time = now() AND ev_txid = pg_current_xact_id()) AS same, count(*)::int AS n
             FROM ${S}.event_${(await tx.query<{ id: number }>(`SELECT queue_id AS id FROM ${S}.queue WHERE queue_name = 'par_tx'`)).rows[0]!.id}`,
        )
      ).rows[0];
    });
    expect(got).toEqual({ same: true, n: 4 });
  });

  it('NOTIFY tick_request when a consumer waits, none otherwise', async () => {
    await client.createStream('par_wake');
    const [listener] = await connections(db, 1);
    const got: string[] = [];
    const seen = (payload: string): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => (got.includes(payload) ? resolve() : void setTimeout(check, 5));
        check();
      });
    (listener as pg.Client).on('notification', (n) => got.push(n.payload ?? ''));
    await listener!.query(`LISTEN "pgferry.${S}.tick_request"`);

    // No waiter: a send, then a marker; the marker arrives, the send's wake-up never did.
    await client.send('par_wake', { n: 1 });
    await client.sendBatch('par_wake', [{ n: 2 }]);
    await db.sql(`SELECT pg_notify($1, 'marker-1')`, [`pgferry.${S}.tick_request`]);
    await seen('marker-1');
    expect(got).toEqual(['marker-1']);

    // A waiter (request_tick registers one): each path wakes it.
    await db.sql(`SELECT ${S}.request_tick('par_wake', 30)`);
    await db.sql(`SELECT pg_notify($1, 'marker-0')`, [`pgferry.${S}.tick_request`]);
    await seen('marker-0'); // request_tick's own notifications are in before it
    got.length = 0;
    await client.send('par_wake', { n: 3 });
    await seen('par_wake');
    await client.sendBatch('par_wake', [{ n: 4 }, { n: 5 }]);
    await db.sql(`SELECT pg_notify($1, 'marker-2')`, [`pgferry.${S}.tick_request`]);
    await seen('marker-2');
    expect(got.filter((p) => p === 'par_wake')).toHaveLength(2);
  });

  it('errors: unknown stream and disabled inserts as the functions raise them, nothing written', async () => {
    const viaSql = async (sql: string, params: unknown[]): Promise<string> =>
      db.sql(sql, params).then(
        () => 'no error',
        (e: Error) => e.message,
      );
    const viaTs = async (fn: () => Promise<unknown>): Promise<string> =>
      fn().then(
        () => 'no error',
        (e: Error & { code?: string }) => `${e.constructor.name}:${e.message}`,
      );
    expect(await viaTs(() => client.send('par_missing', { a: 1 }))).toMatch(
      /^StreamNotFoundError:.*queue not found: par_missing/,
    );
    expect(await viaSql(`SELECT ${S}.send('par_missing', '{}'::jsonb)`, [])).toMatch(
      /queue not found: par_missing/,
    );
    expect(await viaTs(() => client.sendBatch('par_missing', [1]))).toMatch(/queue not found/);
    // send_batch of nothing returns [] before looking the stream up, as there.
    expect(await client.sendBatch('par_missing', [])).toEqual([]);

    await client.createStream('par_off');
    await client.send('par_off', { before: true });
    await client.setConfig('par_off', 'disable_insert', true);
    const off1 = await viaTs(() => client.send('par_off', { a: 1 }));
    const off2 = await viaTs(() => client.sendBatch('par_off', [{ a: 1 }]));
    const offSql = await viaSql(`SELECT ${S}.send('par_off', '{}'::jsonb)`, []);
    expect(offSql).toMatch(/Insert into queue disallowed/);
    expect(off1).toContain('Insert into queue disallowed');
    expect(off2).toContain('Insert into queue disallowed');
    expect(await events('par_off')).toHaveLength(1);
    await client.setConfig('par_off', 'disable_insert', false);
    expect(await client.send('par_off', { after: true })).toBe(2);
  });

  it('follows a rotation of the event table', async () => {
    await client.createStream('par_rot');
    expect(await client.send('par_rot', { t: 0 })).toBe(1);
    await client.setConfig('par_rot', 'rotation_period', '1 millisecond');
    await db.sql(`SELECT ${S}.maint_rotate_tables_step2()`);
    await new Promise((r) => setTimeout(r, 20));
    expect(await db.sql(`SELECT ${S}.maint_rotate_tables_step1('par_rot') AS r`)).toEqual([
      { r: 1 },
    ]);
    expect(await client.send('par_rot', { t: 1 })).toBe(2);
    expect(await client.sendBatch('par_rot', [{ t: 2 }])).toEqual([3]);
    const [q] = await db.sql<{ id: number; cur: number }>(
      `SELECT queue_id AS id, queue_cur_table AS cur FROM ${S}.queue WHERE queue_name = 'par_rot'`,
    );
    const inCur = await db.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${S}.event_${q!.id}_${q!.cur}`,
    );
    expect(q!.cur).toBe(1);
    expect(inCur).toEqual([{ n: 2 }]);
  });

  it('a role with only the writer grant is served by the SQL functions', async () => {
    await client.createStream('par_role');
    const role = `par_writer_${process.pid}`;
    await db.sql(`CREATE ROLE ${role}; GRANT ${S}_writer TO ${role}`);
    try {
      const statements = new StreamStatements(S);
      const out = await client.transaction(async (tx) => {
        await tx.query(`SET LOCAL ROLE ${role}`);
        const direct = await statements.send(tx, 'par_role', 'x', '{}');
        const id = await client.send('par_role', { w: 1 }, { tx });
        const ids = await client.sendBatch('par_role', [{ w: 2 }, { w: 3 }], { tx });
        return { direct, id, ids };
      });
      expect(out).toEqual({ direct: null, id: 1, ids: [2, 3] });
    } finally {
      await db.sql(`DROP ROLE ${role}`);
    }
  });
});
