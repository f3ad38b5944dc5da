import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';

// One test body, run on a plain queue and on partitioned queues (by msg_id
// with partitions so small that every scenario crosses several of them and
// spills into the default partition, and by time): every PGMQ operation
// must behave identically.
const db = useTestDatabase();
const S = () => db.queueSchema;

type Kind = 'plain' | 'partitioned by msg_id' | 'partitioned by time';
const KINDS: Kind[] = ['plain', 'partitioned by msg_id', 'partitioned by time'];
let seq = 0;

async function makeQueue(kind: Kind): Promise<string> {
  const name = `b${++seq}_${kind.replace(/\W+/g, '_')}`.slice(0, 40);
  if (kind === 'plain') await db.sql(`SELECT ${S()}.create($1)`, [name]);
  // premake 1 with 5 ids per partition: ids >= 10 land in the default partition.
  else if (kind === 'partitioned by msg_id')
    await db.sql(`SELECT ${S()}.create_partitioned($1, '5', NULL, 1)`, [name]);
  else await db.sql(`SELECT ${S()}.create_partitioned($1, '1 hour', '1 day', 1)`, [name]);
  return name;
}

const ids = (rows: { msg_id: string }[]) => rows.map((r) => Number(r.msg_id)).sort((a, b) => a - b);

describe.each(KINDS)('PGMQ operations on a %s queue', (kind) => {
  it('send, read, set_vt, archive, delete, pop', async () => {
    const q = await makeQueue(kind);
    const sent = await db.sql<{ send_batch: string }>(
      `SELECT * FROM ${S()}.send_batch($1, array_fill('{"n":1}'::jsonb, ARRAY[12]))`,
      [q],
    );
    expect(sent.map((r) => Number(r.send_batch))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const [one] = await db.sql<{ send: string }>(
      `SELECT * FROM ${S()}.send($1, '{"n":2}'::jsonb, '{"h":true}'::jsonb)`,
      [q],
    );
    expect(Number(one!.send)).toBe(13);

    const r1 = await db.sql<{ msg_id: string; read_ct: number }>(
      `SELECT * FROM ${S()}.read($1, 30, 5)`,
      [q],
    );
    expect(ids(r1)).toEqual([1, 2, 3, 4, 5]);
    expect(r1.every((r) => r.read_ct === 1)).toBe(true);
    const r2 = await db.sql<{ msg_id: string }>(`SELECT * FROM ${S()}.read($1, 30, 5)`, [q]);
    expect(ids(r2)).toEqual([6, 7, 8, 9, 10]);

    // set_vt makes 3 visible again; the next read takes it first.
    const vt = await db.sql<{ msg_id: string; read_ct: number }>(
      `SELECT * FROM ${S()}.set_vt($1, 3::bigint, 0)`,
      [q],
    );
    expect(vt).toMatchObject([{ msg_id: '3', read_ct: 1 }]);
    const r3 = await db.sql<{ msg_id: string; read_ct: number }>(
      `SELECT * FROM ${S()}.read($1, 30, 2)`,
      [q],
    );
    expect(ids(r3)).toEqual([3, 11]);
    expect(r3.find((r) => r.msg_id === '3')!.read_ct).toBe(2);

    const archived = await db.sql<{ archive: string }>(
      `SELECT * FROM ${S()}.archive($1, ARRAY[1, 2, 12, 99]::bigint[])`,
      [q],
    );
    expect(archived.map((r) => Number(r.archive)).sort((a, b) => a - b)).toEqual([1, 2, 12]);
    const [single] = await db.sql<{ archive: boolean }>(`SELECT ${S()}.archive($1, 4::bigint)`, [
      q,
    ]);
    expect(single!.archive).toBe(true);
    const [del] = await db.sql<{ delete: boolean }>(`SELECT ${S()}.delete($1, 5::bigint)`, [q]);
    expect(del!.delete).toBe(true);
    const [gone] = await db.sql<{ delete: boolean }>(`SELECT ${S()}.delete($1, 5::bigint)`, [q]);
    expect(gone!.delete).toBe(false);

    const popped = await db.sql<{ msg_id: string; headers: unknown }>(
      `SELECT * FROM ${S()}.pop($1, 5)`,
      [q],
    );
    expect(ids(popped)).toEqual([13]);
    expect(popped[0]!.headers).toEqual({ h: true });

    const arch = await db.sql<{ msg_id: string; read_ct: number }>(
      `SELECT msg_id, read_ct FROM ${S()}.a_${q} ORDER BY msg_id`,
    );
    expect(arch).toEqual([
      { msg_id: '1', read_ct: 1 },
      { msg_id: '2', read_ct: 1 },
      { msg_id: '4', read_ct: 1 },
      { msg_id: '12', read_ct: 0 },
    ]);
    const left = await db.sql<{ msg_id: string }>(`SELECT msg_id FROM ${S()}.q_${q}`);
    expect(ids(left)).toEqual([3, 6, 7, 8, 9, 10, 11]);
  });

  it('the client hot path (prepared statements on the tables) and metrics', async () => {
    const client = db.queueClient();
    const q = await makeQueue(kind);
    const first = await client.send(q, { a: 1 }, { headers: { k: 'v' } });
    const batch = await client.sendBatch(
      q,
      Array.from({ length: 14 }, (_, i) => ({ i })),
    );
    expect([first, ...batch]).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    await client.send(q, { later: true }, { delaySeconds: 3600 });
    const read = await client.read(q, { qty: 3, visibilityTimeoutSeconds: 60 });
    expect(read.map((m) => m.msgId)).toEqual([1, 2, 3]);
    // Which ids come back is defined, their order is not (as in PGMQ).
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    expect(sorted(await client.archive(q, [2, 14]))).toEqual([2, 14]);
    expect(await client.delete(q, 3)).toBe(true);
    expect(sorted(await client.delete(q, [4, 15, 77]))).toEqual([4, 15]);

    const m = await client.metrics(q);
    expect(m).toMatchObject({ queueName: q, queueLength: 11, totalMessages: 16 });
    // In flight: 1; delayed: 16.
    expect(m.queueVisibleLength).toBe(9);
    expect(m.oldestMsgAgeSec).toBeGreaterThanOrEqual(0);
    if (kind === 'partitioned by msg_id')
      expect(m.defaultPartitionLength).toBe(5); // ids 10-13 and 16
    else if (kind === 'partitioned by time') expect(m.defaultPartitionLength).toBe(0);
    else expect(m.defaultPartitionLength).toBeNull();

    const [info] = (await client.listQueues()).filter((x) => x.queueName === q);
    expect(info!.isPartitioned).toBe(kind !== 'plain');

    const conditional = await client.read(q, { qty: 10, conditional: { i: 5 } });
    expect(conditional.map((x) => x.msgId)).toEqual([7]); // message i=5 is id 7
    const popped = await client.pop(q, { qty: 2 });
    expect(popped.map((x) => x.msgId)).toEqual([5, 6]);

    expect(await client.purgeQueue(q)).toBe(9);
    expect(await client.send(q, { after: 'purge' })).toBe(17);
    expect((await client.metrics(q)).queueLength).toBe(1);
  });

  it('concurrent readers never share a message', async () => {
    const client = db.queueClient();
    const q = await makeQueue(kind);
    await client.sendBatch(
      q,
      Array.from({ length: 120 }, (_, i) => i),
    );
    const seen: number[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (;;) {
          const got = await client.read(q, { qty: 7, visibilityTimeoutSeconds: 60 });
          if (got.length === 0) return;
          seen.push(...got.map((m) => m.msgId));
        }
      }),
    );
    expect(seen.length).toBe(120);
    expect(new Set(seen).size).toBe(120);
  });

  it('read_with_poll returns a message sent while it waits', async () => {
    const client = db.queueClient();
    const q = await makeQueue(kind);
    const waiting = client.readWithPoll(q, { maxPollSeconds: 5, pollIntervalMs: 20 });
    await client.send(q, { late: true });
    const got = await waiting;
    expect(got.map((m) => m.message)).toEqual([{ late: true }]);
  });
});
