import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  DEAD_LETTER_HEADERS,
  InvalidArgumentError,
  QueueClient,
  QueueNotFoundError,
} from '../../src/index.js';

const db = useTestDatabase();
const S = () => db.queueSchema;

async function queues(client: QueueClient, ...names: string[]): Promise<void> {
  for (const n of names) await client.createQueue(n);
}

describe('dead-letter policies', () => {
  it('sets, reads and clears a policy; refuses bad ones with typed errors', async () => {
    const client = db.queueClient();
    await queues(client, 'p_src', 'p_dlq');
    expect(await client.getDeadLetterPolicy('p_src')).toBeNull();
    await client.setDeadLetterPolicy('p_src', { deadLetterQueue: 'p_dlq', maxReadCount: 3 });
    expect(await client.getDeadLetterPolicy('p_src')).toEqual({
      queueName: 'p_src',
      deadLetterQueue: 'p_dlq',
      maxReadCount: 3,
    });
    await client.setDeadLetterPolicy('p_src', { deadLetterQueue: 'p_dlq', maxReadCount: 5 });
    expect((await client.getDeadLetterPolicy('p_src'))!.maxReadCount).toBe(5);

    await expect(
      client.setDeadLetterPolicy('p_src', { deadLetterQueue: 'nope', maxReadCount: 1 }),
    ).rejects.toBeInstanceOf(QueueNotFoundError);
    await expect(
      client.setDeadLetterPolicy('nope', { deadLetterQueue: 'p_dlq', maxReadCount: 1 }),
    ).rejects.toBeInstanceOf(QueueNotFoundError);
    await expect(
      client.setDeadLetterPolicy('p_src', { deadLetterQueue: 'p_src', maxReadCount: 1 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      client.setDeadLetterPolicy('p_src', { deadLetterQueue: 'p_dlq', maxReadCount: 0 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    // The SQL refuses it too, with pgferry's own SQLSTATE.
    await expect(
      db.sql(`SELECT ${S()}.set_dead_letter_policy('p_src', 'p_dlq', 0)`),
    ).rejects.toMatchObject({ code: 'PF201' });
    expect((await client.getDeadLetterPolicy('p_src'))!.maxReadCount).toBe(5); // left intact

    expect(await client.clearDeadLetterPolicy('p_src')).toBe(true);
    expect(await client.clearDeadLetterPolicy('p_src')).toBe(false);
    const [trig] = await db.sql<{ n: string }>(
      `SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname = 'pgferry_dlq_guard'`,
      [`${S()}.q_p_src`],
    );
    expect(trig!.n).toBe('0');
  });

  it('moves a message read too often, with headers saying from where, when and after how many reads', async () => {
    const client = db.queueClient();
    await queues(client, 'm_src', 'm_dlq');
    await client.setDeadLetterPolicy('m_src', { deadLetterQueue: 'm_dlq', maxReadCount: 2 });
    const a = await client.send('m_src', { job: 'a' }, { headers: { trace: 't1' } });
    const b = await client.send('m_src', { job: 'b' }); // NULL headers
    // vt 0: visible again at once, as after a consumer that failed.
    expect(
      (await client.read('m_src', { qty: 10, visibilityTimeoutSeconds: 0 })).map(
        (m) => m.readCount,
      ),
    ).toEqual([1, 1]);
    expect(
      (await client.read('m_src', { qty: 10, visibilityTimeoutSeconds: 0 })).map(
        (m) => m.readCount,
      ),
    ).toEqual([2, 2]);
    expect(await client.read('m_src', { qty: 10, visibilityTimeoutSeconds: 0 })).toEqual([]);
    expect((await client.metrics('m_src')).queueLength).toBe(0);

    const dead = await client.listDeadLetters<{ job: string }>('m_dlq');
    expect(dead.map((d) => d.message.job)).toEqual(['a', 'b']);
    expect(dead[0]!.origin).toMatchObject({ sourceQueue: 'm_src', sourceMsgId: a, readCount: 2 });
    expect(dead[1]!.origin).toMatchObject({ sourceQueue: 'm_src', sourceMsgId: b, readCount: 2 });
    // The one dead-letter record shape (docs/concepts.md), from the same data.
    expect(dead[0]).toMatchObject({
      id: dead[0]!.msgId,
      source: 'm_src',
      sourceId: a,
      payload: { job: 'a' },
      reason: 'read 2 times (max read count)',
      attempts: 2,
      failedAt: dead[0]!.origin!.movedAt,
    });
    expect(dead[0]!.origin!.movedAt.getTime()).toBeGreaterThanOrEqual(
      dead[0]!.origin!.enqueuedAt.getTime(),
    );
    expect(dead[0]!.headers).toMatchObject({
      trace: 't1',
      [DEAD_LETTER_HEADERS.sourceQueue]: 'm_src',
    });
    expect(dead[1]!.headers).toMatchObject({ [DEAD_LETTER_HEADERS.originalHeaders]: null });
    // Listing changes nothing; the DLQ is an ordinary queue.
    expect((await client.listDeadLetters('m_dlq', { qty: 1 })).map((d) => d.msgId)).toEqual([
      dead[0]!.msgId,
    ]);
    expect(await client.listDeadLetters('m_dlq', { afterMsgId: dead[0]!.msgId })).toHaveLength(1);
    expect((await client.metrics('m_dlq')).queueVisibleLength).toBe(2);
  });

  it('a read that races the move cannot hand a message out once more (the guard trigger)', async () => {
    const client = db.queueClient();
    await queues(client, 'x_src', 'x_dlq');
    await client.setDeadLetterPolicy('x_src', { deadLetterQueue: 'x_dlq', maxReadCount: 2 });
    const id = await client.send('x_src', { x: 1 });
    await db.sql(`UPDATE ${S()}.q_x_src SET read_ct = 2 WHERE msg_id = $1`, [id]);
    // What a read does when its visibility ran out between _before_read and
    // its own selection: the update is skipped, the row is not returned.
    const res = await db.pool.query(
      `UPDATE ${S()}.q_x_src SET read_ct = read_ct + 1, vt = clock_timestamp() + interval '30 seconds' WHERE msg_id = $1 RETURNING *`,
      [id],
    );
    expect(res.rowCount).toBe(0);
    // Other updates (set_vt) are untouched.
    expect(await client.setVisibilityTimeout('x_src', id, 0)).toHaveLength(1);
    expect(await client.read('x_src')).toEqual([]);
    expect(await client.listDeadLetters('x_dlq')).toHaveLength(1);
  });

  it('an exhausted message released early (set_vt) or read under REPEATABLE READ is still moved', async () => {
    const client = db.queueClient();
    await queues(client, 'e_src', 'e_dlq');
    await client.setDeadLetterPolicy('e_src', { deadLetterQueue: 'e_dlq', maxReadCount: 1 });
    const id = await client.send('e_src', { e: 1 });
    await client.read('e_src', { visibilityTimeoutSeconds: 3600 }); // exhausted, due in an hour
    expect(await client.read('e_src')).toEqual([]);
    expect(await client.listDeadLetters('e_dlq')).toEqual([]);
    await client.setVisibilityTimeout('e_src', id, 0); // released: due now
    expect(await client.read('e_src')).toEqual([]);
    expect((await client.listDeadLetters('e_dlq')).map((d) => d.origin!.sourceMsgId)).toEqual([id]);

    const id2 = await client.send('e_src', { e: 2 });
    await client.transaction(async (tx) => {
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      expect(
        (await client.read('e_src', { visibilityTimeoutSeconds: 0, tx })).map((m) => m.msgId),
      ).toEqual([id2]);
    });
    await client.transaction(async (tx) => {
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      expect(await client.read('e_src', { tx })).toEqual([]);
    });
    expect(await client.listDeadLetters('e_dlq')).toHaveLength(2);
  });

  it('requeues one or all dead letters with their original headers, and purges', async () => {
    const client = db.queueClient();
    await queues(client, 'r_a', 'r_b', 'r_dlq');
    await client.setDeadLetterPolicy('r_a', { deadLetterQueue: 'r_dlq', maxReadCount: 1 });
    await client.setDeadLetterPolicy('r_b', { deadLetterQueue: 'r_dlq', maxReadCount: 1 });
    await client.sendBatch('r_a', [{ n: 1 }, { n: 2 }, { n: 3 }], {
      headers: [{ h: 1 }, null, { h: 3 }],
    });
    await client.sendBatch('r_b', [{ n: 4 }, { n: 5 }]);
    for (const q of ['r_a', 'r_b']) {
      await client.read(q, { qty: 10, visibilityTimeoutSeconds: 0 });
      await client.read(q, { qty: 10, visibilityTimeoutSeconds: 0 });
    }
    const dead = await client.listDeadLetters('r_dlq');
    expect(dead).toHaveLength(5);
    expect(await client.listDeadLetters('r_dlq', { sourceQueue: 'r_b' })).toHaveLength(2);

    const newId = await client.requeueDeadLetter('r_dlq', dead[0]!.msgId);
    expect(newId).toBe(4); // r_a's numbering continues
    expect(await client.requeueDeadLetter('r_dlq', dead[0]!.msgId)).toBeNull();
    const [back] = await client.read('r_a', { qty: 10 });
    expect(back).toMatchObject({ msgId: 4, readCount: 1, message: { n: 1 }, headers: { h: 1 } });

    expect(await client.requeueDeadLetters('r_dlq', { sourceQueue: 'r_a' })).toBe(2);
    const again = await client.read('r_a', { qty: 10 });
    expect(again.map((m) => [m.message, m.headers])).toEqual([
      [{ n: 2 }, null],
      [{ n: 3 }, { h: 3 }],
    ]);
    expect(await client.purgeDeadLetters('r_dlq', { sourceQueue: 'r_a' })).toBe(0);
    expect(await client.purgeDeadLetters('r_dlq')).toBe(2);
    expect(await client.listDeadLetters('r_dlq')).toEqual([]);
  });

  it('under concurrent consumers no message is handed out more often than allowed, and each is dead-lettered once', async () => {
    const client = db.queueClient();
    await queues(client, 'c_src', 'c_dlq');
    const max = 3;
    await client.setDeadLetterPolicy('c_src', { deadLetterQueue: 'c_dlq', maxReadCount: max });
    const total = 200;
    await client.sendBatch(
      'c_src',
      Array.from({ length: total }, (_, i) => ({ i })),
    );
    const deliveries = new Map<number, number[]>();
    const consumers = Array.from(
      { length: 4 },
      () => new QueueClient({ connectionString: db.url, schema: S() }),
    );
    consumers.forEach((c) => db.track(c));
    await Promise.all(
      consumers.map(async (c) => {
        for (;;) {
          // vt 0 = every delivery fails at once, except that messages with
          // i % 5 == 0 succeed on their 2nd delivery (deleted in the read's
          // transaction, which holds their row locks meanwhile).
          const got = await c.transaction(async (tx) => {
            const rows = await c.read<{ i: number }>('c_src', {
              qty: 10,
              visibilityTimeoutSeconds: 0,
              tx,
            });
            for (const m of rows) {
              if (m.message.i % 5 === 0 && m.readCount === 2)
                await c.delete('c_src', m.msgId, { tx });
            }
            return rows;
          });
          for (const m of got)
            deliveries.set(m.msgId, [...(deliveries.get(m.msgId) ?? []), m.readCount]);
          if (got.length === 0) {
            if ((await c.metrics('c_src')).queueLength === 0) return;
            // Left: rows other consumers hold or have just exhausted. A short
            // pause instead of a spin, so that under a loaded CI machine the
            // holders get the CPU to commit (this test once ran out its 30 s).
            await new Promise((r) => setTimeout(r, 5));
          }
        }
      }),
    );
    for (const [, counts] of deliveries) {
      expect(Math.max(...counts)).toBeLessThanOrEqual(max);
      expect(new Set(counts).size).toBe(counts.length); // no delivery handed out twice
    }
    const dead = await client.listDeadLetters('c_dlq', { qty: 1000 });
    expect(dead).toHaveLength(total - total / 5);
    const origins = dead.map((d) => d.origin!.sourceMsgId);
    expect(new Set(origins).size).toBe(origins.length);
    expect(dead.every((d) => d.origin!.readCount === max)).toBe(true);
    expect(dead.some((d) => (d.message as { i: number }).i % 5 === 0)).toBe(false);
  });

  it('holds for group reads and partitioned queues too', async () => {
    const client = db.queueClient();
    await client.createPartitionedQueue('g_src', { partitionInterval: 5, premake: 1 });
    await client.createQueue('g_dlq');
    await client.setDeadLetterPolicy('g_src', { deadLetterQueue: 'g_dlq', maxReadCount: 1 });
    await client.sendBatch(
      'g_src',
      Array.from({ length: 12 }, (_, i) => i),
      {
        headers: Array.from({ length: 12 }, (_, i) => ({ 'x-pgmq-group': `g${i % 3}` })),
      },
    );
    const first = await db.sql(`SELECT * FROM ${S()}.read_grouped('g_src', 0, 20)`);
    expect(first).toHaveLength(12);
    expect(await db.sql(`SELECT * FROM ${S()}.read_grouped('g_src', 0, 20)`)).toEqual([]);
    expect(await client.listDeadLetters('g_dlq', { qty: 100 })).toHaveLength(12);
  });

  it('dropping the dead-letter queue removes the policy and its guard', async () => {
    const client = db.queueClient();
    await queues(client, 'd_src', 'd_dlq');
    await client.setDeadLetterPolicy('d_src', { deadLetterQueue: 'd_dlq', maxReadCount: 1 });
    await client.send('d_src', { x: 1 });
    await client.read('d_src', { visibilityTimeoutSeconds: 0 });
    await client.dropQueue('d_dlq');
    expect(await client.getDeadLetterPolicy('d_src')).toBeNull();
    // Without a policy the message is simply read again.
    expect(
      (await client.read('d_src', { visibilityTimeoutSeconds: 0 })).map((m) => m.readCount),
    ).toEqual([2]);
    // And dropping the source queue removes its policy row.
    await client.createQueue('d_dlq');
    await client.setDeadLetterPolicy('d_src', { deadLetterQueue: 'd_dlq', maxReadCount: 1 });
    await client.dropQueue('d_src');
    const [n] = await db.sql<{ n: string }>(
      `SELECT count(*) AS n FROM ${S()}._dead_letter_policy WHERE queue_name = 'd_src'`,
    );
    expect(n!.n).toBe('0');
  });
});
