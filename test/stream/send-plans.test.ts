// The prepared single send (src/stream/statements.ts) is one INSERT … SELECT
// whose RETURNING sends the tick_request NOTIFY. Prepared statements switch
// to a generic plan after a few executions: the wake-up must survive both
// plan kinds, and nothing may be sent when no consumer waits or nothing was
// inserted. A rotation seen by an older snapshot (REPEATABLE READ) sends the
// event where send() sends it.
import { afterAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { useTestDatabase } from '../support/db.js';
import { StreamClient } from '../../src/stream/index.js';
import { StreamStatements } from '../../src/stream/statements.js';
import { S, connections } from './helpers.js';

const db = useTestDatabase();
const client = new StreamClient({ connectionString: db.url });
afterAll(() => client.close());

const CHANNEL = `pgferry.${S}.tick_request`;

async function listener(): Promise<{ got: string[]; seen(p: string): Promise<void> }> {
  const [c] = await connections(db, 1);
  const got: string[] = [];
  (c as pg.Client).on('notification', (n) => got.push(n.payload ?? ''));
  await c!.query(`LISTEN "${CHANNEL}"`);
  const seen = (payload: string): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => (got.includes(payload) ? resolve() : void setTimeout(check, 5));
      check();
    });
  return { got, seen };
}

async function queueId(stream: string): Promise<number> {
  const [q] = await db.sql<{ id: number }>(
    `SELECT queue_id AS id FROM ${S}.queue WHERE queue_name = $1`,
    [stream],
  );
  return q!.id;
}

describe('stream send: the prepared statement under generic and custom plans', () => {
  for (const mode of ['force_generic_plan', 'force_custom_plan']) {
    it(`${mode}: wakes a waiting consumer, stays silent otherwise`, async () => {
      const stream = `plan_${mode.split('_')[1]}`;
      await client.createStream(stream);
      const id = await queueId(stream);
      const { got, seen } = await listener();
      const statements = new StreamStatements(S);
      // No waiter: ten sends on one connection (a generic plan is chosen
      // after five), then a marker; only the marker arrives.
      const quiet = await client.transaction(async (tx) => {
        await tx.query(`SET LOCAL plan_cache_mode = ${mode}`);
        const ids: (number | null)[] = [];
        for (let i = 0; i < 10; i++) ids.push(await statements.send(tx, stream, 't', `{"i":${i}}`));
        await tx.query(`SELECT pg_notify($1, 'marker-quiet')`, [CHANNEL]);
        return ids;
      });
      expect(quiet).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      await seen('marker-quiet');
      expect(got).toEqual(['marker-quiet']);

      // A waiter (written directly: request_tick would notify by itself).
      const woke = await client.transaction(async (tx) => {
        await tx.query(`SET LOCAL plan_cache_mode = ${mode}`);
        for (let i = 0; i < 6; i++) await statements.send(tx, stream, 't', '{}');
        await tx.query(
          `INSERT INTO ${S}._waiter (queue_id, until) VALUES ($1, now() + interval '30 seconds')`,
          [id],
        );
        return statements.send(tx, stream, 't', '{"w":1}');
      });
      expect(woke).toBe(17);
      await seen(stream);
      expect(got.filter((p) => p === stream)).toHaveLength(1);

      // An expired waiter wakes nobody; a declined send (inserts disabled) neither.
      got.length = 0;
      await db.sql(
        `UPDATE ${S}._waiter SET until = now() - interval '1 second' WHERE queue_id = $1`,
        [id],
      );
      await client.transaction(async (tx) => {
        await tx.query(`SET LOCAL plan_cache_mode = ${mode}`);
        await statements.send(tx, stream, 't', '{}');
      });
      await db.sql(
        `UPDATE ${S}._waiter SET until = now() + interval '30 seconds' WHERE queue_id = $1`,
        [id],
      );
      await client.setConfig(stream, 'disable_insert', true);
      const declined = await client.transaction(async (tx) => {
        await tx.query(`SET LOCAL plan_cache_mode = ${mode}`);
        return statements.send(tx, stream, 't', '{}');
      });
      expect(declined).toBeNull();
      await db.sql(`SELECT pg_notify($1, 'marker-end')`, [CHANNEL]);
      await seen('marker-end');
      expect(got).toEqual(['marker-end']);
      await client.setConfig(stream, 'disable_insert', false);
      await db.sql(`DELETE FROM ${S}._waiter WHERE queue_id = $1`, [id]);
    });
  }
});

describe('stream send: a rotation and an older snapshot', () => {
  it('REPEATABLE READ from before a rotation: the event goes where send() puts it', async () => {
    const rotate = async (stream: string): Promise<void> => {
      await client.setConfig(stream, 'rotation_period', '1 millisecond');
      await db.sql(`SELECT ${S}.maint_rotate_tables_step2()`);
      await new Promise((r) => setTimeout(r, 20));
      expect(await db.sql(`SELECT ${S}.maint_rotate_tables_step1($1) AS r`, [stream])).toEqual([
        { r: 1 },
      ]);
    };
    const tables = async (stream: string): Promise<string[]> => {
      const id = await queueId(stream);
      const rows = await db.sql<{ t: string }>(
        `SELECT tableoid::regclass::text AS t FROM ${S}.event_${id} ORDER BY ev_id`,
      );
      return rows.map((r) => r.t.replace(/^.*_(\d)$/, 'table $1'));
    };
    // stale: this client resolved table 0 before the rotation (what the old
    // snapshot still sees); fresh: another client resolved table 1 after it
    // (the statement finds no current row in the old snapshot and declines).
    const fresh = new StreamClient({ connectionString: db.url });
    try {
      for (const stream of ['rr_stale', 'rr_fresh', 'rr_sql']) {
        await client.createStream(stream);
        expect(await client.send(stream, { before: true })).toBe(1);
      }
      const txs = await connections(db, 3);
      for (const c of txs) {
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await c.query('SELECT 1'); // the snapshot is taken here, before the rotation
      }
      for (const stream of ['rr_stale', 'rr_fresh', 'rr_sql']) await rotate(stream);
      expect(await fresh.send('rr_fresh', { after: true })).toBe(2); // table 1, cached
      const [a, b, c] = txs as [pg.Client, pg.Client, pg.Client];
      expect(await client.send('rr_stale', { during: true }, { tx: a })).toBe(2);
      expect(await fresh.send('rr_fresh', { during: true }, { tx: b })).toBe(3);
      const viaSql = await c.query<{ id: string }>(
        `SELECT ${S}.send('rr_sql', '{"during": true}'::jsonb) AS id`,
      );
      expect(Number(viaSql.rows[0]!.id)).toBe(2);
      for (const t of txs) await t.query('COMMIT');
      // The old snapshot sees table 0 as current: send() writes there, and so do both paths.
      expect(await tables('rr_sql')).toEqual(['table 0', 'table 0']);
      expect(await tables('rr_stale')).toEqual(['table 0', 'table 0']);
      expect(await tables('rr_fresh')).toEqual(['table 0', 'table 1', 'table 0']);
    } finally {
      await fresh.close();
    }
  });
});
