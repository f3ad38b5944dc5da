import pg from 'pg';
import { migrate } from '../../src/migrate/migrator.js';
import { StreamClient } from '../../src/stream/index.js';
import { rounds, throughput, type BenchSection } from '../harness.js';

// StreamClient.send / sendBatch (the prepared path of src/stream/statements.ts)
// against plain INSERTs into a table of the event tables' shape (same
// columns, an index on ev_txid as the event tables have), 4 clients,
// interleaved over 3 rounds (medians). Commits dominate a send per
// transaction, so on a shared machine expect wide spreads between runs. A third figure runs PgQue's SQL
// function send() directly, the path every non-TypeScript producer takes.

const BODY = { orderId: 12345, customer: 'c-42', items: [1, 2, 3], note: 'benchmark payload' };
const PLAIN = `CREATE TABLE IF NOT EXISTS bench_plain_events (
  ev_id bigserial, ev_time timestamptz NOT NULL DEFAULT now(), ev_txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  ev_owner int, ev_retry int, ev_type text, ev_data text, ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text);
  CREATE INDEX IF NOT EXISTS bench_plain_events_txid ON bench_plain_events (ev_txid);`;

export const streamSendSection: BenchSection = {
  name: 'stream-send',
  description: 'stream send (1 per transaction) and send_batch of 100 vs INSERT, 4 clients',
  async run(ctx) {
    await migrate({ connectionString: ctx.url, components: ['stream'] });
    const admin = new pg.Pool({ connectionString: ctx.url, max: 4 });
    const client = new StreamClient({ connectionString: ctx.url, maxConnections: 4 });
    const body = JSON.stringify(BODY);
    try {
      await admin.query(PLAIN);
      await client.createStream('bench_send');
      await client.createStream('bench_send_sql');

      const singles = ctx.size(6000, 40);
      const plainOne = (): Promise<number> =>
        throughput(singles, 4, 1, () =>
          admin.query({
            name: 'plain_ins',
            text: `INSERT INTO bench_plain_events (ev_type, ev_data) VALUES ('bench', $1::jsonb::text) RETURNING ev_id`,
            values: [body],
          }),
        );
      const [ours1, base1] = await rounds(ctx, async () => [
        await throughput(
          singles,
          4,
          1,
          async () => void (await client.send('bench_send', BODY, { type: 'bench' })),
        ),
        await plainOne(),
      ]);
      ctx.report({
        section: 'stream-send',
        operation: 'send, 1 per transaction, 4 clients',
        value: ours1,
        unit: 'ev/s',
        baseline: { name: 'INSERT', value: base1 },
        target: { ratio: 0.85 },
      });
      const [sql1, baseSql1] = await rounds(ctx, async () => [
        await throughput(singles, 4, 1, () =>
          admin.query({
            name: 'fn_send',
            text: `SELECT pgque.send('bench_send_sql', 'bench', $1::jsonb)`,
            values: [body],
          }),
        ),
        await plainOne(),
      ]);
      ctx.report({
        section: 'stream-send',
        operation: 'SQL function pgque.send(), 1 per transaction',
        value: sql1,
        unit: 'ev/s',
        baseline: { name: 'INSERT', value: baseSql1 },
      });

      const batched = ctx.size(100_000, 400);
      const bodies = Array.from({ length: 100 }, () => BODY);
      const texts = bodies.map((b) => JSON.stringify(b));
      const [oursB, baseB] = await rounds(ctx, async () => [
        await throughput(
          batched,
          4,
          100,
          async () => (await client.sendBatch('bench_send', bodies, { type: 'bench' })).length,
        ),
        await throughput(batched, 4, 100, () =>
          admin.query({
            name: 'plain_insb',
            text: `INSERT INTO bench_plain_events (ev_type, ev_data) SELECT 'bench', m::text FROM unnest($1::jsonb[]) m RETURNING ev_id`,
            values: [texts],
          }),
        ),
      ]);
      ctx.report({
        section: 'stream-send',
        operation: 'send_batch of 100, 4 clients',
        value: oursB,
        unit: 'ev/s',
        baseline: { name: 'multi-row INSERT', value: baseB },
        target: { ratio: 0.85 },
      });
    } finally {
      await client.close();
      await admin.end();
    }
  },
};
