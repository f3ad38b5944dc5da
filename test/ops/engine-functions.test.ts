// The engines' read-only ops functions (sql/queue/0009_ops.sql,
// sql/tasks/0002_ops.sql, sql/stream/0011_ops.sql, sql/bus/0003_ops.sql):
// bad input refused with the data intact, who may call them.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { attempt, schemas, useHostileRoles } from '../security/hostile.js';

const db = useTestDatabase();
const h = useHostileRoles(db);

describe('ops functions of the engines', () => {
  it('refuse bad arguments and leave the queue as it was', async () => {
    const s = schemas(db);
    const q = db.queueClient();
    await q.createQueue('of_q');
    await q.send('of_q', { a: 1 });
    const fail = async (sql: string) => {
      const err = await db.sql(sql).then(
        () => null,
        (e: { code?: string }) => e.code,
      );
      expect(err, sql).not.toBeNull();
      return err;
    };
    expect(
      await fail(`SELECT * FROM ${s.queue}.ops_browse('of_q', false, 0, NULL, NULL, NULL, 0)`),
    ).toBe('22023');
    expect(await fail(`SELECT * FROM ${s.queue}.ops_queue_stats(NULL, -1)`)).toBe('22023');
    expect(await fail(`SELECT * FROM ${s.queue}.ops_browse('of_missing')`)).toBe('42P01');
    expect(await fail(`SELECT * FROM ${s.stream}.tick_stats(0)`)).toBe('22023');
    const rows = await db.sql<{ message: unknown; read_ct: number }>(
      `SELECT * FROM ${s.queue}.ops_browse('of_q', false, 0, NULL, '{"a": 1}', NULL, 10)`,
    );
    expect(rows.map((r) => [r.message, r.read_ct])).toEqual([[{ a: 1 }, 0]]);
    const [stat] = await db.sql<{ depth: string; depth_exact: boolean }>(
      `SELECT * FROM ${s.queue}.ops_queue_stats(ARRAY['of_q'])`,
    );
    expect([Number(stat!.depth), stat!.depth_exact]).toEqual([1, true]);
  });

  it('stream stats are for the reader role; the bus registry is not for the bus role', async () => {
    const s = schemas(db);
    expect(await attempt(h.client.reader, `SELECT * FROM ${s.stream}.ticker_leader()`)).toBe('ok');
    expect(await attempt(h.client.reader, `SELECT * FROM ${s.stream}.tick_stats(60)`)).toBe('ok');
    expect(await attempt(h.client.bus, `SELECT * FROM ${s.bus}._pgferry_bus_channel_stats()`)).toBe(
      '42501',
    );
    expect(await attempt(h.client.bus, `SELECT * FROM ${s.stream}.ticker_leader()`)).toBe('42501');
    expect(
      await attempt(h.client.reader, `SELECT * FROM ${s.bus}._pgferry_bus_channel_stats()`),
    ).toBe('42501');
  });
});
