import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { InvalidArgumentError, QueueNotFoundError } from '../../src/index.js';

const db = useTestDatabase();
const S = () => db.queueSchema;

async function archiveCount(queue: string): Promise<number> {
  const [r] = await db.sql<{ n: string }>(`SELECT count(*) AS n FROM ${S()}.a_${queue}`);
  return Number(r!.n);
}

describe('archive retention', () => {
  it('sets, reads and clears a retention; refuses bad input', async () => {
    const client = db.queueClient();
    await client.createQueue('ar_cfg');
    expect(await client.getArchiveRetention('ar_cfg')).toBeNull();
    await client.setArchiveRetention('ar_cfg', 86_400);
    expect(await client.getArchiveRetention('ar_cfg')).toBe(86_400);
    expect(await client.listMaintainedQueues()).toContain('ar_cfg');
    await expect(client.setArchiveRetention('ar_cfg', 0)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(
      db.sql(`SELECT ${S()}.set_archive_retention('ar_cfg', interval '-1 hour')`),
    ).rejects.toMatchObject({
      code: 'PF201',
    });
    await expect(client.setArchiveRetention('ar_none', 60)).rejects.toBeInstanceOf(
      QueueNotFoundError,
    );
    expect(await client.getArchiveRetention('ar_cfg')).toBe(86_400);
    await client.setArchiveRetention('ar_cfg', null);
    expect(await client.getArchiveRetention('ar_cfg')).toBeNull();
    expect(await client.listMaintainedQueues()).not.toContain('ar_cfg');
  });

  it.each([
    ['a plain archive', 'ar_plain', false],
    ['a partitioned archive', 'ar_part', true],
  ])('deletes expired archived messages in batches (%s)', async (_label, queue, partitioned) => {
    const client = db.queueClient();
    if (partitioned)
      await client.createPartitionedQueue(queue, {
        partitionInterval: 10,
        retentionInterval: null,
      });
    else await client.createQueue(queue);
    await client.sendBatch(
      queue,
      Array.from({ length: 25 }, (_, i) => i),
    );
    await client.archive(
      queue,
      Array.from({ length: 25 }, (_, i) => i + 1),
    );
    // 20 of them were archived two hours ago.
    await db.sql(
      `UPDATE ${S()}.a_${queue} SET archived_at = now() - interval '2 hours' WHERE msg_id <= 20`,
    );
    await client.setArchiveRetention(queue, 3600);

    const r1 = await client.runMaintenance(queue, { batchSize: 8 });
    expect(r1).toMatchObject({ archiveRowsDeleted: 8, morePending: true });
    const r2 = await client.runMaintenance(queue, { batchSize: 8 });
    expect(r2).toMatchObject({ archiveRowsDeleted: 8, morePending: true });
    const r3 = await client.runMaintenance(queue, { batchSize: 8 });
    expect(r3).toMatchObject({ archiveRowsDeleted: 4, morePending: false });
    expect(await archiveCount(queue)).toBe(5);
    const left = await db.sql<{ msg_id: string }>(
      `SELECT msg_id FROM ${S()}.a_${queue} ORDER BY msg_id`,
    );
    expect(left.map((r) => Number(r.msg_id))).toEqual([21, 22, 23, 24, 25]);
  });

  it('the scheduler keeps calling while a queue has more to delete', async () => {
    const client = db.queueClient();
    await client.createQueue('ar_sched');
    await client.sendBatch(
      'ar_sched',
      Array.from({ length: 30 }, (_, i) => i),
    );
    await client.archive(
      'ar_sched',
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    await db.sql(`UPDATE ${S()}.a_ar_sched SET archived_at = now() - interval '1 day'`);
    await client.setArchiveRetention('ar_sched', 60);
    const results = await client.maintenance({ queues: ['ar_sched'], batchSize: 7 }).runOnce();
    expect(results.map((r) => r.archiveRowsDeleted)).toEqual([7, 7, 7, 7, 2]);
    expect(await archiveCount('ar_sched')).toBe(0);
  });
});
