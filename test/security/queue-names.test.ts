// Queue names that used to break the queue engine for everyone: two names
// for one table, names whose derived identifiers PostgreSQL truncates, and
// one broken queue failing metrics_all() / list_queues() for the database.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { connections } from '../support/connections.js';

const db = useTestDatabase();
const Q = (): string => db.queueSchema;

async function tables(like: string): Promise<string[]> {
  const rows = await db.sql<{ relname: string }>(
    `SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relname LIKE $2 ORDER BY 1`,
    [Q(), like],
  );
  return rows.map((r) => r.relname);
}

describe('queue names', () => {
  it.each([
    ['create', 'create'],
    ['create_unlogged', 'create_unlogged'],
    ['create_partitioned', 'create_partitioned'],
  ])('%s refuses a name whose table another queue already uses', async (_, fn) => {
    const base = `Coll_${fn}`;
    await db.sql(`SELECT ${Q()}.create($1)`, [base]);
    const before = await tables(`%coll\\_${fn}%`);
    for (const other of [base.toLowerCase(), base.toUpperCase()]) {
      const err = await db.sql(`SELECT ${Q()}.${fn}($1)`, [other]).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/^queue name ".*" collides with existing queue/);
      await expect(db.queueClient().createQueue(other)).rejects.toMatchObject({
        code: 'PGFERRY_INVALID_QUEUE_NAME',
      });
    }
    expect(await tables(`%coll\\_${fn}%`)).toEqual(before);
    expect(
      await db.sql(`SELECT queue_name FROM ${Q()}.meta WHERE lower(queue_name) = lower($1)`, [
        base,
      ]),
    ).toEqual([{ queue_name: base }]);
    await db.sql(`SELECT ${Q()}.drop_queue($1)`, [base]);
  });

  it('serialises concurrent creations of names for one table: one wins, one is refused', async () => {
    const [c1, c2] = await connections(db, 2);
    await c1!.query('BEGIN');
    await c1!.query(`SELECT ${Q()}.create('Race')`);
    const second = c2!.query(`SELECT ${Q()}.create('race')`).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    await c1!.query('COMMIT');
    expect(((await second) as Error).message).toMatch(/collides with existing queue "Race"/);
    expect(
      await db.sql(`SELECT queue_name FROM ${Q()}.meta WHERE lower(queue_name) = 'race'`),
    ).toEqual([{ queue_name: 'Race' }]);
    await db.sql(`SELECT ${Q()}.drop_queue('Race')`);
  });

  it('refuses names whose derived identifiers would be truncated (bytes, not characters)', async () => {
    const tooLong = 'é'.repeat(24); // 24 characters, 48 bytes
    const err = await db.sql(`SELECT ${Q()}.create($1)`, [tooLong]).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^queue name is too long: 48 bytes/);
    await expect(db.queueClient().createQueue(tooLong)).rejects.toMatchObject({
      code: 'PGFERRY_INVALID_QUEUE_NAME',
    });
    expect(await tables('%é%')).toEqual([]);
    // Two 47-byte names sharing a long prefix each keep their own archive index.
    const n1 = 'é'.repeat(23) + 'a';
    const n2 = 'é'.repeat(23) + 'b';
    for (const n of [n1, n2]) {
      await db.sql(`SELECT ${Q()}.create($1)`, [n]);
      const idx = await db.sql(
        `SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = $2`,
        [Q(), `archived_at_idx_${n}`],
      );
      expect(idx, n).toHaveLength(1);
      await db.sql(`SELECT ${Q()}.drop_queue($1)`, [n]);
    }
    // ASCII names keep PGMQ's 47-character limit.
    await db.sql(`SELECT ${Q()}.create($1)`, ['x'.repeat(47)]);
    await db.sql(`SELECT ${Q()}.drop_queue($1)`, ['x'.repeat(47)]);
  });

  it('metrics_all() and list_queues() skip a broken queue with a WARNING', async () => {
    await db.sql(`SELECT ${Q()}.create('sec_ok'), ${Q()}.create('sec_broken')`);
    await db.sql(`SELECT ${Q()}.send('sec_ok', '{}')`);
    // A queue broken behind the engine's back (its table dropped by hand).
    await db.sql(`DROP TABLE ${Q()}.q_sec_broken`);
    const [c] = await connections(db, 1);
    const warnings: string[] = [];
    c!.on('notice', (n) => warnings.push(`${n.severity}: ${n.message}`));
    const metrics = await c!.query<{ queue_name: string; queue_length: string }>(
      `SELECT queue_name, queue_length FROM ${Q()}.metrics_all()`,
    );
    expect(metrics.rows).toContainEqual({ queue_name: 'sec_ok', queue_length: '1' });
    expect(metrics.rows.map((r) => r.queue_name)).not.toContain('sec_broken');
    const listed = await c!.query<{ queue_name: string }>(
      `SELECT queue_name FROM ${Q()}.list_queues()`,
    );
    expect(listed.rows.map((r) => r.queue_name)).toContain('sec_ok');
    expect(listed.rows.map((r) => r.queue_name)).not.toContain('sec_broken');
    expect(
      warnings.filter((w) => w.startsWith('WARNING') && w.includes('sec_broken')),
    ).toHaveLength(2);
    // the typed client sees the healthy queues
    const all = await db.queueClient().metricsAll();
    expect(all.map((m) => m.queueName)).toContain('sec_ok');
    await db.sql(`DELETE FROM ${Q()}.meta WHERE queue_name = 'sec_broken'`);
    await db.sql(`DROP TABLE ${Q()}.a_sec_broken`);
  });
});
