// Temporary objects named like the engines' own cannot shadow them: every
// definer function pins search_path to pg_catalog, pg_temp and qualifies
// its relations. Each stream login fills pg_temp with look-alike tables
// (and a pg_temp function) and the API behaves exactly as before.
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { useHostileRoles, STREAM as S } from './hostile.js';

const db = useTestDatabase();
const h = useHostileRoles(db);

const LOOKALIKES = [
  'queue',
  'consumer',
  'subscription',
  'tick',
  'retry_queue',
  'config',
  'event_template',
  'meta',
  '_pgferry_bus_member',
  '_pgferry_bus_config',
];

beforeAll(async () => {
  await db.sql(`SELECT ${S}.create_queue('sec_shadow')`);
  await db.sql(`SELECT ${S}.register_consumer('sec_shadow', 'c')`);
  for (const who of ['reader', 'writer', 'admin', 'bus'] as const) {
    const c = h.client[who];
    for (const t of LOOKALIKES)
      await c.query(`CREATE TEMP TABLE ${t} (x int); INSERT INTO pg_temp.${t} VALUES (1)`);
    await c.query(
      `CREATE FUNCTION pg_temp.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT 'epoch'::timestamptz $$`,
    );
  }
});

describe('pg_temp shadowing', () => {
  it('changes nothing for a writer, a reader and an admin of the stream', async () => {
    await h.client.writer.query(`SELECT ${S}.send('sec_shadow', 'kind', 'payload')`);
    await h.client.admin.query(`SELECT ${S}.force_next_tick('sec_shadow')`);
    await h.client.admin.query(`SELECT ${S}.ticker('sec_shadow')`);
    const got = await h.client.reader.query<{ payload: string; batch_id: string }>(
      `SELECT * FROM ${S}.receive('sec_shadow', 'c', 10)`,
    );
    expect(got.rows.map((r) => r.payload)).toEqual(['payload']);
    await h.client.reader.query(`SELECT ${S}.ack($1)`, [got.rows[0]!.batch_id]);
    // the real tables hold the state; the temp ones are untouched
    const [q] = await db.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${S}.queue WHERE queue_name = 'sec_shadow'`,
    );
    expect(q!.n).toBe(1);
    for (const who of ['reader', 'writer', 'admin'] as const) {
      const r = await h.client[who].query<{ n: number }>(
        `SELECT (SELECT count(*)::int FROM pg_temp.queue) + (SELECT count(*)::int FROM pg_temp.tick) AS n`,
      );
      expect(r.rows[0]!.n).toBe(2);
    }
  });

  it('changes nothing for a bus member', async () => {
    const c = h.client.bus;
    const q = (await c.query<{ q: string }>(`SELECT public.bus_join('shadow') AS q`)).rows[0]!.q;
    const peer = (await c.query<{ q: string }>(`SELECT public.bus_join('shadow') AS q`)).rows[0]!.q;
    const ids = await c.query<{ ids: string[] }>(
      `SELECT public.bus_publish('shadow', $1, '{"n":1}'::jsonb) AS ids`,
      [q],
    );
    expect(ids.rows[0]!.ids).toHaveLength(1);
    const got = await c.query(`SELECT * FROM public.bus_subscribe($1, 'shadow', 30, 10, 0)`, [
      peer,
    ]);
    expect(got.rows).toHaveLength(1);
    // the same through the headers variants (sql/bus/0004_headers.sql)
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await c.query(`SELECT public.bus_publish('shadow', $1, '{"n":2}', $2)`, [
      q,
      JSON.stringify({ traceparent: tp }),
    ]);
    const withHeaders = await c.query(
      `SELECT message, headers FROM public.bus_subscribe_with_headers($1, 'shadow', 30, 10, 0)`,
      [peer],
    );
    expect(withHeaders.rows).toEqual([{ message: { n: 2 }, headers: { traceparent: tp } }]);
    // leases are real timestamps, not the shadowing now()'s epoch
    const [m] = await db.sql<{ ok: boolean }>(
      `SELECT bool_and(lease_until > now()) AS ok FROM public._pgferry_bus_member WHERE queue_name IN ($1, $2)`,
      [q, peer],
    );
    expect(m!.ok).toBe(true);
    await c.query(`SELECT public.bus_leave($1, 'shadow'), public.bus_leave($2, 'shadow')`, [
      q,
      peer,
    ]);
  });
});
