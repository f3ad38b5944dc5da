import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { connections } from '../support/connections.js';

const db = useTestDatabase();
const S = db.queueSchema;

describe('concurrent consumers (separate connections)', () => {
  it('never receive the same message inside its visibility timeout', async () => {
    await db.sql(`SELECT ${S}.create('race')`);
    const total = 2000;
    await db.sql(
      `SELECT ${S}.send_batch('race', array_agg(jsonb_build_object('i', g))) FROM generate_series(1, $1) g`,
      [total],
    );
    const conns = await connections(db, 4);
    const seen: number[][] = conns.map(() => []);
    await Promise.all(
      conns.map(async (c, i) => {
        for (;;) {
          const res = await c.query<{ msg_id: string }>(
            `SELECT msg_id FROM ${S}.read('race', 60, 7)`,
          );
          if (res.rows.length === 0) break;
          seen[i]!.push(...res.rows.map((r) => Number(r.msg_id)));
        }
      }),
    );
    const all = seen.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(total);
    // Every connection got a share: they really ran concurrently.
    expect(seen.filter((s) => s.length > 0).length).toBeGreaterThan(1);
    const [m] = await db.sql(
      `SELECT count(*) FILTER (WHERE read_ct = 1)::int AS once, count(*)::int AS n FROM ${S}.q_race`,
    );
    expect(m).toEqual({ once: total, n: total });
  });

  it('pop under concurrency hands each message to exactly one caller', async () => {
    await db.sql(`SELECT ${S}.create('pop_race')`);
    await db.sql(
      `SELECT ${S}.send_batch('pop_race', array_agg(to_jsonb(g))) FROM generate_series(1, 500) g`,
    );
    const conns = await connections(db, 3);
    const got = await Promise.all(
      conns.map(async (c) => {
        const mine: number[] = [];
        for (;;) {
          const res = await c.query<{ msg_id: string }>(
            `SELECT msg_id FROM ${S}.pop('pop_race', 9)`,
          );
          if (res.rows.length === 0) return mine;
          mine.push(...res.rows.map((r) => Number(r.msg_id)));
        }
      }),
    );
    const all = got.flat();
    expect(all.length).toBe(500);
    expect(new Set(all).size).toBe(500);
  });

  it('a reader blocked inside an open transaction does not hold back the others (SKIP LOCKED)', async () => {
    await db.sql(`SELECT ${S}.create('locked')`);
    await db.sql(`SELECT ${S}.send_batch('locked', ARRAY['1','2']::jsonb[])`);
    const [a, b] = await connections(db, 2);
    await a!.query('BEGIN');
    const first = await a!.query<{ msg_id: string }>(
      `SELECT msg_id FROM ${S}.read('locked', 30, 1)`,
    );
    const second = await b!.query<{ msg_id: string }>(
      `SELECT msg_id FROM ${S}.read('locked', 30, 5)`,
    );
    await a!.query('ROLLBACK');
    expect(first.rows.map((r) => r.msg_id)).toEqual(['1']);
    expect(second.rows.map((r) => r.msg_id)).toEqual(['2']);
    // The rolled-back read left message 1 visible.
    const again = await b!.query<{ msg_id: string; read_ct: number }>(
      `SELECT msg_id, read_ct FROM ${S}.read('locked', 30, 5)`,
    );
    expect(again.rows).toEqual([{ msg_id: '1', read_ct: 1 }]);
  });

  it('a message whose visibility timeout expires is delivered again with read_ct incremented', async () => {
    await db.sql(`SELECT ${S}.create('expire')`);
    await db.sql(`SELECT ${S}.send('expire', '{"job":1}'::jsonb)`);
    const [a, b] = await connections(db, 2);
    const first = await a!.query(`SELECT msg_id, read_ct FROM ${S}.read('expire', 1, 1)`);
    expect(first.rows).toEqual([{ msg_id: '1', read_ct: 1 }]);
    // Inside the timeout nobody else gets it.
    expect((await b!.query(`SELECT * FROM ${S}.read('expire', 1, 1)`)).rows).toEqual([]);
    const second = await eventually(
      async () => {
        const r = await b!.query(`SELECT msg_id, read_ct FROM ${S}.read('expire', 30, 1)`);
        return r.rows.length ? r.rows : undefined;
      },
      5000,
      50,
    );
    expect(second).toEqual([{ msg_id: '1', read_ct: 2 }]);
  });
});
