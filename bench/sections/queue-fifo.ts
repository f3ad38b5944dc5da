import pg from 'pg';
import { QueueClient } from '../../src/queue/client.js';
import type { Queryable } from '../../src/driver/types.js';
import { migrate } from '../../src/migrate/migrator.js';
import { rounds, throughput, type BenchSection } from '../harness.js';

// FIFO group reads over a queue of 10,000 messages in 1,000 groups, against
// a plain `read` of the same batch size on an equivalent ungrouped queue, in
// the same run. A group read has to find every group's head (one pass over
// the visible messages) unless create_fifo_index made the group-key index:
// then groups come from a prefix of the queue in msg_id order (see
// sql/queue/0007_fifo_speed.sql). Target: >= 0.5x a plain read.

const BODY = JSON.stringify({ orderId: 12345, note: 'fifo benchmark payload' });

export const queueFifoSection: BenchSection = {
  name: 'queue-fifo',
  description:
    'read_grouped / _rr / _head over 10,000 messages in 1,000 groups vs plain read of the same batch',
  async run(ctx) {
    await migrate({ connectionString: ctx.url, components: ['queue'] });
    const pool = new pg.Pool({ connectionString: ctx.url, max: 4 });
    const client = new QueueClient({ connectionString: ctx.url, maxConnections: 4 });
    const total = ctx.size(10_000, 200);
    const groups = ctx.size(1_000, 20);
    const qty = 10;
    const fill = async (q: string, grouped: boolean): Promise<void> => {
      await client.createQueue(q);
      // Interleaved: message i belongs to group i % groups.
      await pool.query(
        `SELECT pgmq.send_batch($1, array_agg($2::jsonb ORDER BY i),
                 ${grouped ? `array_agg(jsonb_build_object('x-pgmq-group', 'g' || (i % $4)) ORDER BY i)` : 'NULL::jsonb[]'})
           FROM generate_series(1, $3) i`,
        grouped ? [q, BODY, total, groups] : [q, BODY, total],
      );
      // What docs/queue.md tells FIFO users to do: the group-key index.
      if (grouped) await client.createFifoIndex(q);
      await pool.query(`ANALYZE pgmq.q_${q}`);
    };
    try {
      await fill('fifo_grouped', true);
      await fill('fifo_plain', false);

      // --- one read of `qty` over the full queue, rolled back so every call sees the same 10,000 messages
      const iterations = ctx.size(150, 3);
      const perRead = async (sql: string, q: string): Promise<number> => {
        const c = await pool.connect();
        try {
          const started = process.hrtime.bigint();
          for (let i = 0; i < iterations; i++) {
            await c.query('BEGIN');
            await c.query(sql, [q, qty]);
            await c.query('ROLLBACK');
          }
          return iterations / (Number(process.hrtime.bigint() - started) / 1e9);
        } finally {
          c.release();
        }
      };
      // The same through QueueClient (what a user and the FIFO Consumer call):
      // group reads run as one prepared statement (src/queue/engine/grouped.ts),
      // the plain read as the prepared call of pgmq.read. Each in a
      // rolled-back transaction, like the SQL rows.
      const rollback = new Error('rollback');
      const perClientRead = async (read: (tx: Queryable) => Promise<unknown>): Promise<number> => {
        const started = process.hrtime.bigint();
        for (let i = 0; i < iterations; i++) {
          await client
            .transaction(async (tx) => {
              await read(tx);
              throw rollback;
            })
            .catch((e: unknown) => {
              if (e !== rollback) throw e;
            });
        }
        return iterations / (Number(process.hrtime.bigint() - started) / 1e9);
      };
      const modes = [
        ['readGrouped', 'grouped'],
        ['readGroupedRoundRobin', 'roundRobin'],
        ['readGroupedHead', 'head'],
      ] as const;
      for (const [method, mode] of modes) {
        const [ours, plain] = await rounds(ctx, async () => [
          await perClientRead((tx) => client.readGroupedBy('fifo_grouped', mode, { qty, tx })),
          await perClientRead((tx) => client.read('fifo_plain', { qty, tx })),
        ]);
        ctx.report({
          section: 'queue-fifo',
          operation: `QueueClient.${method} qty ${qty}, ${total} msgs / ${groups} groups`,
          value: ours,
          unit: 'reads/s',
          baseline: { name: `QueueClient.read qty ${qty}`, value: plain },
          target: { ratio: 0.5 },
        });
        ctx.log(
          `${method}: ${(1000 / ours).toFixed(2)} ms per read (read ${(1000 / plain).toFixed(2)} ms)`,
        );
      }

      // The SQL functions (the contract; what a PGMQ client calls).
      const plainSql = `SELECT * FROM pgmq.read($1, 30, $2)`;
      for (const fn of ['read_grouped', 'read_grouped_rr', 'read_grouped_head']) {
        // Interleaved with the plain read, 3 rounds, medians.
        const [ours, plain] = await rounds(ctx, async () => [
          await perRead(`SELECT * FROM pgmq.${fn}($1, 30, $2)`, 'fifo_grouped'),
          await perRead(plainSql, 'fifo_plain'),
        ]);
        ctx.report({
          section: 'queue-fifo',
          operation: `${fn} qty ${qty}, ${total} msgs / ${groups} groups`,
          value: ours,
          unit: 'reads/s',
          baseline: { name: `read qty ${qty}`, value: plain },
          target: { ratio: 0.5 },
        });
        ctx.log(
          `${fn}: ${(1000 / ours).toFixed(2)} ms per read (plain read ${(1000 / plain).toFixed(2)} ms)`,
        );
      }

      // --- drain both queues: read qty 100 + delete, 4 clients (grouped: read_grouped keeps groups in order)
      const drain = async (q: string, fn: 'read' | 'readGrouped'): Promise<number> =>
        throughput(total, 4, 100, async () => {
          const msgs =
            fn === 'read'
              ? await client.read(q, { qty: 100 })
              : await client.readGrouped(q, { qty: 100 });
          if (msgs.length)
            await client.delete(
              q,
              msgs.map((m) => m.msgId),
            );
          return msgs.length;
        });
      const drainPlain = await drain('fifo_plain', 'read');
      const drainGrouped = await drain('fifo_grouped', 'readGrouped');
      ctx.report({
        section: 'queue-fifo',
        operation: `drain ${total} msgs: read_grouped 100 + delete, 4 clients`,
        value: drainGrouped,
        unit: 'msg/s',
        baseline: { name: 'read 100 + delete', value: drainPlain },
      });
    } finally {
      await client.close();
      await pool.end();
    }
  },
};
