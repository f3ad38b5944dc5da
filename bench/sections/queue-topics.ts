import pg from 'pg';
import { QueueClient } from '../../src/queue/client.js';
import { migrate } from '../../src/migrate/migrator.js';
import { throughput, type BenchSection } from '../harness.js';

// Topic fan-out: one send_topic that routes to 10 bound queues, against the
// application doing the same 10 sends itself in one transaction (pgferry's
// prepared-statement send), 4 clients, same run.

const BODY = { orderId: 12345, note: 'topic benchmark payload' };
const FANOUT = 10;

export const queueTopicsSection: BenchSection = {
  name: 'queue-topics',
  description: 'send_topic fan-out to 10 queues vs 10 plain sends in one transaction',
  async run(ctx) {
    await migrate({ connectionString: ctx.url, components: ['queue'] });
    const pool = new pg.Pool({ connectionString: ctx.url, max: 4 });
    const client = new QueueClient({ connectionString: ctx.url, maxConnections: 4 });
    try {
      const queues = Array.from({ length: FANOUT }, (_, i) => `topic_q${i}`);
      for (const q of queues) {
        await client.createQueue(q);
        await client.bindTopic('orders.#', q);
      }
      // A binding that does not match, so routing really filters.
      await client.createQueue('topic_other');
      await client.bindTopic('invoices.*', 'topic_other');
      const n = ctx.size(3000, 20);
      const base = await throughput(n, 4, 1, () =>
        client.transaction(async (tx) => {
          for (const q of queues) await client.send(q, BODY, { tx });
        }),
      );
      const ours = await throughput(n, 4, 1, async () => {
        const sent = await client.sendTopic('orders.eu.created', BODY);
        if (sent !== FANOUT)
          throw new Error(`send_topic reached ${sent} queues, expected ${FANOUT}`);
      });
      ctx.report({
        section: 'queue-topics',
        operation: `send_topic to ${FANOUT} queues, 4 clients`,
        value: ours,
        unit: 'fan-outs/s',
        baseline: { name: `${FANOUT} sends in 1 tx`, value: base },
      });
      const batch = ctx.size(300, 5);
      const msgs = Array.from({ length: 100 }, () => BODY);
      const baseBatch = await throughput(batch * 100, 4, 100, () =>
        client.transaction(async (tx) => {
          for (const q of queues) await client.sendBatch(q, msgs, { tx });
        }),
      );
      const oursBatch = await throughput(batch * 100, 4, 100, async () => {
        await client.sendBatchTopic('orders.eu.created', msgs);
      });
      ctx.report({
        section: 'queue-topics',
        operation: `send_batch_topic 100 msgs to ${FANOUT} queues, 4 clients`,
        value: oursBatch,
        unit: 'msgs/s (per queue)',
        baseline: { name: `${FANOUT} send_batch in 1 tx`, value: baseBatch },
      });
      const [{ n: rows }] = (
        await pool.query<{ n: string }>(`SELECT count(*) AS n FROM pgmq.q_topic_q0`)
      ).rows as [{ n: string }];
      ctx.log(`queue topic_q0 holds ${rows} messages after the run`);
    } finally {
      await client.close();
      await pool.end();
    }
  },
};
