import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { InvalidArgumentError } from '../../src/index.js';

const db = useTestDatabase();
const S = db.queueSchema;

describe('read_locked (SQL)', () => {
  it('returns the visible messages read would pick, filtered, without updating them', async () => {
    await db.sql(`SELECT ${S}.create('rl1')`);
    await db.sql(`SELECT ${S}.send_batch('rl1', ARRAY['{"k":1}','{"k":2}','{"k":3}']::jsonb[])`);
    await db.sql(`SELECT ${S}.send('rl1', '{"k":4}'::jsonb, 3600)`);
    const rows = await db.driver().transaction(async (tx) => {
      const all = await tx.query(
        `SELECT msg_id, read_ct, last_read_at FROM ${S}.read_locked('rl1', 2)`,
      );
      const only = await tx.query(`SELECT msg_id FROM ${S}.read_locked('rl1', 10, '{"k":3}')`);
      return [...all.rows, ...only.rows];
    });
    expect(rows).toEqual([
      { msg_id: '1', read_ct: 0, last_read_at: null },
      { msg_id: '2', read_ct: 0, last_read_at: null },
      { msg_id: '3' },
    ]);
    const after = await db.sql(`SELECT sum(read_ct)::int AS n FROM ${S}.q_rl1`);
    expect(after).toEqual([{ n: 0 }]);
  });
});

describe('QueueClient.processBatch', () => {
  it('handles, finishes and commits a batch together with the handler writes', async () => {
    const client = db.queueClient();
    await client.createQueue('pb');
    await db.sql(`CREATE TABLE pb_results (n int)`);
    await client.sendBatch('pb', [1, 2, 3, 4, 5]);
    const n = await client.processBatch<number>(
      'pb',
      async (msgs, tx) => {
        expect(msgs.map((m) => m.message)).toEqual([1, 2, 3]);
        for (const m of msgs) await tx.query('INSERT INTO pb_results VALUES ($1)', [m.message]);
      },
      { qty: 3 },
    );
    expect(n).toBe(3);
    expect(await db.sql(`SELECT n FROM pb_results ORDER BY n`)).toEqual([
      { n: 1 },
      { n: 2 },
      { n: 3 },
    ]);
    expect((await client.metrics('pb')).queueLength).toBe(2);
    expect(
      await client.processBatch('pb', async () => undefined, { qty: 10, finish: 'archive' }),
    ).toBe(2);
    expect(await db.sql(`SELECT msg_id FROM ${S}.a_pb ORDER BY msg_id`)).toEqual([
      { msg_id: '4' },
      { msg_id: '5' },
    ]);
    let called = false;
    expect(await client.processBatch('pb', async () => void (called = true))).toBe(0);
    expect(called).toBe(false);
  });

  it('rolls back everything when the handler throws: messages visible at once, read_ct unchanged', async () => {
    const client = db.queueClient();
    await client.createQueue('pb_fail');
    await db.sql(`CREATE TABLE pb_fail_results (n int)`);
    await client.sendBatch('pb_fail', [1, 2]);
    await expect(
      client.processBatch('pb_fail', async (_msgs, tx) => {
        await tx.query('INSERT INTO pb_fail_results VALUES (1)');
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await db.sql(`SELECT * FROM pb_fail_results`)).toEqual([]);
    const visible = await client.read<number>('pb_fail', { qty: 10 });
    expect(visible.map((m) => [m.message, m.readCount])).toEqual([
      [1, 1],
      [2, 1],
    ]);
  });

  it('concurrent processors on separate pools never share a message', async () => {
    const producer = db.queueClient();
    await producer.createQueue('pb_race');
    const total = 400;
    await producer.sendBatch(
      'pb_race',
      Array.from({ length: total }, (_, i) => i),
    );
    const seen: number[] = [];
    await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const c = db.queueClient();
        while (
          (await c.processBatch<number>(
            'pb_race',
            async (msgs) => void seen.push(...msgs.map((m) => m.message)),
            { qty: 9 },
          )) > 0
        );
      }),
    );
    expect(seen.length).toBe(total);
    expect(new Set(seen).size).toBe(total);
  });

  it('validates its options', async () => {
    const client = db.queueClient();
    await expect(
      client.processBatch('pb', async () => undefined, { qty: 0 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      client.processBatch('pb', async () => undefined, { finish: 'keep' as 'delete' }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
