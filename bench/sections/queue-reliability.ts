import pg from 'pg';
import { QueueClient } from '../../src/queue/client.js';
import { migrate } from '../../src/migrate/migrator.js';
import { throughput, type BenchContext, type BenchSection } from '../harness.js';

// What the reliability features cost on the hot path, each against the same
// client operations on a plain queue in the same run: a msg_id-partitioned
// queue (partitions of 10,000, with the default partition and maintenance
// running as they would in production, PGMQ's default retention of 100,000
// ids) and a queue with a dead-letter policy. Reads on a partitioned queue
// plan and lock every partition (the vt filter cannot prune), so their cost
// grows with the number of partitions kept.

const SECTION = 'queue-reliability';
const BODY = { orderId: 12345, customer: 'c-42', items: [1, 2, 3] };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

type Variant = 'partitioned' | 'dead-letter policy';

export const queueReliabilitySection: BenchSection = {
  name: SECTION,
  description:
    'send_batch and read + delete on a partitioned queue and on a queue with a dead-letter policy, vs a plain queue',
  async run(ctx: BenchContext) {
    await migrate({ connectionString: ctx.url, components: ['queue'] });
    const admin = new pg.Pool({ connectionString: ctx.url, max: 2 });
    const client = new QueueClient({ connectionString: ctx.url, maxConnections: 4 });
    const s = client.schema;
    let n = 0;
    const make = async (variant: Variant | 'plain'): Promise<string> => {
      const q = `rel_${++n}`;
      if (variant === 'partitioned') {
        await client.createPartitionedQueue(q, {
          partitionInterval: 10_000,
          retentionInterval: 100_000,
          premake: 4,
        });
      } else {
        await client.createQueue(q);
        if (variant === 'dead-letter policy') {
          await client.createQueue(`${q}_dlq`);
          await client.setDeadLetterPolicy(q, { deadLetterQueue: `${q}_dlq`, maxReadCount: 5 });
        }
      }
      return q;
    };
    const bodies = Array.from({ length: 100 }, () => BODY);
    const batched = ctx.size(100_000, 400);
    const prefill = ctx.size(50_000, 400);
    try {
      for (const variant of ['partitioned', 'dead-letter policy'] as Variant[]) {
        const sendRuns: [number, number][] = [];
        const readRuns: [number, number][] = [];
        for (let round = 0; round < (ctx.smoke ? 1 : 3); round++) {
          const plain = await make('plain');
          const other = await make(variant);
          // Maintenance keeps partitions ahead of a partitioned queue, as the scheduler would.
          const scheduler = client.maintenance({ intervalMs: 200, queues: [other] });
          if (variant === 'partitioned') scheduler.start();
          const order = round % 2 === 0 ? [plain, other] : [other, plain];
          const send: Record<string, number> = {};
          for (const q of order)
            send[q] = await throughput(
              batched,
              4,
              100,
              async () => (await client.sendBatch(q, bodies)).length,
            );
          sendRuns.push([send[other]!, send[plain]!]);
          // Same backlog size for the read phase.
          for (const q of [plain, other]) {
            await client.purgeQueue(q);
            for (let i = 0; i < prefill; i += 1000)
              await client.sendBatch(
                q,
                Array.from({ length: 1000 }, () => BODY),
              );
            await client.runMaintenance(q);
            await admin.query(`VACUUM ANALYZE ${s}.q_${q}`);
          }
          const read: Record<string, number> = {};
          for (const q of order) {
            read[q] = await throughput(prefill, 4, 100, async () => {
              const got = await client.read(q, { qty: 100 });
              if (got.length)
                await client.delete(
                  q,
                  got.map((m) => m.msgId),
                );
              return got.length || 100;
            });
          }
          readRuns.push([read[other]!, read[plain]!]);
          await scheduler.stop();
        }
        const med = (runs: [number, number][], i: 0 | 1) => median(runs.map((r) => r[i]));
        ctx.report({
          section: SECTION,
          operation: `send_batch of 100, 4 clients, ${variant}`,
          value: med(sendRuns, 0),
          unit: 'msg/s',
          baseline: { name: 'plain queue', value: med(sendRuns, 1) },
          target: { ratio: 0.85 },
        });
        ctx.report({
          section: SECTION,
          operation: `read 100 + delete, 4 consumers, ${variant}`,
          value: med(readRuns, 0),
          unit: 'msg/s',
          baseline: { name: 'plain queue', value: med(readRuns, 1) },
          target: { ratio: 0.85 },
        });
      }
    } finally {
      await client.close();
      await admin.end();
    }
  },
};
