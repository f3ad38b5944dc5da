import pg from 'pg';
import { migrate } from '../../src/migrate/migrator.js';
import { StreamClient } from '../../src/stream/index.js';
import { throughput, type BenchSection } from '../harness.js';
import { interleaved } from '../interleave.js';

// StreamClient.send / sendBatch (the prepared path of src/stream/statements.ts)
// against plain INSERTs into a table of the event tables' shape (same
// columns, no primary key, one index on ev_txid as the event tables have),
// 4 clients each. Both sides get the same work per call: the payload object
// is JSON-serialised per call (what a user's INSERT does too), one round trip
// per send on a pooled connection, a named prepared statement. A third
// figure runs PgQue's SQL function send() directly, the path every
// non-TypeScript producer takes.
//
// Noise: a send per transaction is a commit each, and on a shared machine
// the rate of a whole run drifts by 2× within a minute. So every variant runs
// in short slices, interleaved, the order rotating each round (no variant is
// always first or last), after a warm-up (bench/interleave.ts); the ratio
// judged is the median of the per-round ratios, printed with their spread.

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
    const fnPool = new pg.Pool({ connectionString: ctx.url, max: 4 });
    const client = new StreamClient({ connectionString: ctx.url, maxConnections: 4 });
    const rounds = ctx.smoke ? 1 : 15;
    try {
      await admin.query(PLAIN);
      await client.createStream('bench_send');
      await client.createStream('bench_send_sql');

      const singles = ctx.size(1200, 40);
      const one = await interleaved(
        ctx,
        'send',
        {
          ours: () =>
            throughput(
              singles,
              4,
              1,
              async () => void (await client.send('bench_send', BODY, { type: 'bench' })),
            ),
          sql: () =>
            throughput(singles, 4, 1, () =>
              fnPool.query({
                name: 'fn_send',
                text: `SELECT pgque.send('bench_send_sql', 'bench', $1::jsonb)`,
                values: [JSON.stringify(BODY)],
              }),
            ),
          insert: () =>
            throughput(singles, 4, 1, () =>
              admin.query({
                name: 'plain_ins',
                text: `INSERT INTO bench_plain_events (ev_type, ev_data) VALUES ('bench', $1::jsonb::text) RETURNING ev_id`,
                values: [JSON.stringify(BODY)],
              }),
            ),
        },
        rounds,
      );
      ctx.report({
        section: 'stream-send',
        operation: 'send, 1 per transaction, 4 clients',
        value: one.rate.ours!,
        unit: 'ev/s',
        baseline: { name: 'INSERT', value: one.rate.insert! },
        ratio: one.ratio.ours!,
        target: { ratio: 0.85 },
      });
      ctx.report({
        section: 'stream-send',
        operation: 'SQL function pgque.send(), 1 per transaction',
        value: one.rate.sql!,
        unit: 'ev/s',
        baseline: { name: 'INSERT', value: one.rate.insert! },
        ratio: one.ratio.sql!,
      });

      const batched = ctx.size(20_000, 400);
      const bodies = Array.from({ length: 100 }, () => BODY);
      const many = await interleaved(
        ctx,
        'send_batch',
        {
          ours: () =>
            throughput(
              batched,
              4,
              100,
              async () => (await client.sendBatch('bench_send', bodies, { type: 'bench' })).length,
            ),
          insert: () =>
            throughput(batched, 4, 100, () =>
              admin.query({
                name: 'plain_insb',
                text: `INSERT INTO bench_plain_events (ev_type, ev_data) SELECT 'bench', m::text FROM unnest($1::jsonb[]) m RETURNING ev_id`,
                values: [bodies.map((b) => JSON.stringify(b))],
              }),
            ),
        },
        rounds,
      );
      ctx.report({
        section: 'stream-send',
        operation: 'send_batch of 100, 4 clients',
        value: many.rate.ours!,
        unit: 'ev/s',
        baseline: { name: 'multi-row INSERT', value: many.rate.insert! },
        ratio: many.ratio.ours!,
        target: { ratio: 0.85 },
      });
    } finally {
      await client.close();
      await fnPool.end();
      await admin.end();
    }
  },
};
