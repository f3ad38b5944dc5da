import pg from 'pg';
import { migrate } from '../../src/migrate/migrator.js';
import { Consumer, StreamClient } from '../../src/stream/index.js';
import { percentile, type BenchContext, type BenchSection } from '../harness.js';

// Streams: producing against plain INSERTs into a table of the event
// tables' shape; consuming (1 and 3 fan-out consumers through the Consumer
// class) against the queue engine's read + delete of the same number of
// messages; end-to-end latency with the default elected ticker; dead tuples
// after a long workload with a snapshot held open, next to the queue engine.

const BODY = { orderId: 12345, customer: 'c-42', items: [1, 2, 3], note: 'benchmark payload' };
const PLAIN = `CREATE TABLE IF NOT EXISTS bench_plain_events (
  ev_id bigserial, ev_time timestamptz NOT NULL DEFAULT now(), ev_txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  ev_owner int, ev_retry int, ev_type text, ev_data text, ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text);
  CREATE INDEX IF NOT EXISTS bench_plain_events_txid ON bench_plain_events (ev_txid);`;

/** Fills `stream` with `n` events in ticked windows of `window` events (SQL side, fast). */
async function prefill(admin: pg.Pool, stream: string, n: number, window = 1000): Promise<void> {
  for (let i = 0; i < n; i += window) {
    await admin.query(
      `SELECT pgque.send_batch($1, 'bench', array_agg($2::jsonb)) FROM generate_series(1, $3)`,
      [stream, JSON.stringify(BODY), Math.min(window, n - i)],
    );
    await admin.query(`SELECT pgque.force_next_tick($1), pgque.ticker($1)`, [stream]);
  }
}

async function consumeAll(
  ctx: BenchContext,
  stream: string,
  names: string[],
  perConsumer: number,
): Promise<number> {
  const counts = new Map(names.map((n) => [n, 0]));
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolveDone = r));
  const consumers = names.map((name) =>
    new Consumer({
      connectionString: ctx.url,
      stream,
      name,
      subscribe: false,
      handleSignals: false,
      ticker: false,
      maxConnections: 2,
    }).on('*', () => {
      counts.set(name, counts.get(name)! + 1);
      if ([...counts.values()].every((c) => c >= perConsumer)) resolveDone();
    }),
  );
  const started = process.hrtime.bigint();
  consumers.forEach((c) => void c.start());
  await done;
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  await Promise.all(consumers.map((c) => c.stop()));
  return (perConsumer * names.length) / secs;
}

async function queueReadDelete(
  admin: pg.Pool,
  queues: string[],
  perQueue: number,
): Promise<number> {
  const started = process.hrtime.bigint();
  await Promise.all(
    queues.map(async (q) => {
      let left = perQueue;
      while (left > 0) {
        const r = await admin.query<{ n: number }>(
          `WITH r AS (SELECT msg_id FROM pgmq.read($1, 30, 100)) SELECT pgmq.delete($1, coalesce(array_agg(msg_id), '{}')) IS NOT NULL AS ok, count(*)::int AS n FROM r`,
          [q],
        );
        left -= r.rows[0]!.n;
        if (r.rows[0]!.n === 0) break;
      }
    }),
  );
  return (perQueue * queues.length) / (Number(process.hrtime.bigint() - started) / 1e9);
}

export const streamSection: BenchSection = {
  name: 'stream',
  description:
    'streams: send/send_batch vs INSERT, fan-out consumers vs queue read+delete, end-to-end latency, dead tuples under a held snapshot',
  async run(ctx) {
    await migrate({ connectionString: ctx.url, components: ['queue', 'stream'] });
    const admin = new pg.Pool({ connectionString: ctx.url, max: 6 });
    const client = new StreamClient({ connectionString: ctx.url, maxConnections: 4 });
    try {
      await admin.query(PLAIN);
      await client.createStream('bench_send');

      // send / send_batch against INSERT: the stream-send section.

      // --- consumers: 1 and 3 (fan-out: each gets every event) vs queue read+delete of the same count
      const events = ctx.size(50_000, 300);
      for (const n of [1, 3]) {
        const stream = `bench_fan${n}`;
        await client.createStream(stream);
        const names = Array.from({ length: n }, (_, i) => `c${i}`);
        for (const name of names) await client.subscribe(stream, name);
        await prefill(admin, stream, events);
        const queues = names.map((_, i) => `bench_q${n}_${i}`);
        for (const q of queues) {
          await admin.query(`SELECT pgmq.create($1)`, [q]);
          for (let i = 0; i < events; i += 1000) {
            await admin.query(
              `SELECT pgmq.send_batch($1, array_agg($2::jsonb)) FROM generate_series(1, $3)`,
              [q, JSON.stringify(BODY), Math.min(1000, events - i)],
            );
          }
        }
        const base = await queueReadDelete(admin, queues, events);
        const ours = await consumeAll(ctx, stream, names, events);
        ctx.report({
          section: 'stream',
          operation: `consume, ${n} consumer${n > 1 ? 's (fan-out)' : ''}, no-op handlers`,
          value: ours,
          unit: 'ev/s',
          baseline: { name: `queue read 100 + delete, ${n} queue(s)`, value: base },
        });
      }

      // --- end-to-end latency: send committed → handler called, default ticker
      await client.createStream('bench_lat');
      const lat: number[] = [];
      const total = ctx.size(1000, 20);
      let resolveAll: () => void = () => undefined;
      const all = new Promise<void>((r) => (resolveAll = r));
      // Commit and handler times are recorded separately: the handler can run
      // before the send's own promise resolves in this process.
      const committedAt = new Map<number, bigint>();
      const handledAt = new Map<number, bigint>();
      const consumer = new Consumer<number>({
        connectionString: ctx.url,
        stream: 'bench_lat',
        name: 'lat',
        handleSignals: false,
      }).on('*', (m) => {
        handledAt.set(m.payload, process.hrtime.bigint());
        if (handledAt.size >= total) resolveAll();
      });
      void consumer.start();
      while ((await client.consumerInfo('bench_lat')).length === 0)
        await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 1500)); // the ticker is elected and idle
      for (let i = 0; i < total; i++) {
        await client.send('bench_lat', i);
        committedAt.set(i, process.hrtime.bigint()); // send resolved = committed (autocommit)
        await new Promise((r) => setTimeout(r, 5)); // ~200 events/s
      }
      await all;
      await consumer.stop();
      for (const [i, t] of committedAt) lat.push(Math.max(0, Number(handledAt.get(i)! - t) / 1e6));
      lat.sort((a, b) => a - b);
      ctx.report({
        section: 'stream',
        operation: 'end-to-end latency p50 (send → handler, default ticker)',
        value: percentile(lat, 50),
        unit: 'ms',
        target: { max: 10 },
      });
      ctx.report({
        section: 'stream',
        operation: 'end-to-end latency p99',
        value: percentile(lat, 99),
        unit: 'ms',
      });

      // --- dead tuples after a long workload with a snapshot held open
      const big = ctx.size(1_000_000, 2000);
      const step = ctx.smoke ? 500 : 10_000;
      await client.createStream('bench_dead');
      await client.subscribe('bench_dead', 'd');
      await client.setConfig('bench_dead', 'rotation_period', '1 millisecond');
      await admin.query(`SELECT pgmq.create('bench_dead_q')`);
      const holder = await admin.connect();
      await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await holder.query('SELECT count(*) FROM pg_class');
      const drain = await admin.connect();
      try {
        for (let i = 0; i < big; i += step) {
          await admin.query(
            `SELECT pgque.send_batch('bench_dead', array_agg($1::jsonb)) FROM generate_series(1, $2)`,
            [JSON.stringify(BODY), step],
          );
          await admin.query(
            `SELECT pgque.force_next_tick('bench_dead'), pgque.ticker('bench_dead')`,
          );
          for (;;) {
            const r = await drain.query<{ b: string | null }>(
              `SELECT max(batch_id) AS b FROM pgque.receive('bench_dead', 'd', 2147483647)`,
            );
            if (r.rows[0]!.b === null) {
              const more = await drain.query<{ m: boolean }>(
                `SELECT EXISTS (SELECT 1 FROM pgque.subscription s JOIN pgque.tick t ON t.tick_queue = s.sub_queue AND t.tick_id > s.sub_last_tick JOIN pgque.queue q ON q.queue_id = s.sub_queue WHERE q.queue_name = 'bench_dead') AS m`,
              );
              if (!more.rows[0]!.m) break;
              continue;
            }
            await drain.query(`SELECT pgque.ack($1)`, [r.rows[0]!.b]);
          }
          await admin.query(`SELECT pgque.maint()`);
          await admin.query(
            `SELECT pgmq.send_batch('bench_dead_q', array_agg($1::jsonb)) FROM generate_series(1, $2)`,
            [JSON.stringify(BODY), step],
          );
          for (let left = step; left > 0; left -= 1000) {
            await admin.query(
              `SELECT pgmq.delete('bench_dead_q', array_agg(msg_id)) FROM pgmq.read('bench_dead_q', 30, 1000)`,
            );
          }
        }
        const qid = (
          await admin.query<{ id: number }>(
            `SELECT queue_id AS id FROM pgque.queue WHERE queue_name = 'bench_dead'`,
          )
        ).rows[0]!.id;
        const tables = [0, 1, 2].map((i) => `event_${qid}_${i}`);
        for (const t of tables) await admin.query(`VACUUM pgque.${t}`);
        await admin.query(`VACUUM pgmq.q_bench_dead_q`);
        const dead = async (schema: string, rels: string[]): Promise<number> => {
          for (let i = 0; i < 50; i++) {
            const r = await admin.query<{ d: string; seen: boolean }>(
              `SELECT coalesce(sum(n_dead_tup), 0) AS d, count(*) FILTER (WHERE last_vacuum IS NOT NULL) = $3 AS seen FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = ANY($2)`,
              [schema, rels, rels.length],
            );
            if (r.rows[0]!.seen) return Number(r.rows[0]!.d);
            await new Promise((res) => setTimeout(res, 100));
          }
          return NaN;
        };
        const streamDead = await dead('pgque', tables);
        const queueDead = await dead('pgmq', ['q_bench_dead_q']);
        const rotations = (
          await admin.query<{ t: number }>(
            `SELECT queue_cur_table AS t FROM pgque.queue WHERE queue_id = $1`,
            [qid],
          )
        ).rows[0]!.t;
        ctx.log(
          `stream: ${big} events consumed with a snapshot held open; event table now ${rotations}; queue engine dead tuples ${queueDead}`,
        );
        ctx.report({
          section: 'stream',
          operation: `dead tuples on event tables after ${big} events, snapshot held`,
          value: streamDead,
          unit: 'tuples',
          target: { max: 0 },
        });
        ctx.report({
          section: 'stream',
          operation: `dead tuples, queue engine read + delete, same workload`,
          value: queueDead,
          unit: 'tuples',
        });
      } finally {
        await holder.query('COMMIT');
        holder.release();
        drain.release();
      }
    } finally {
      await client.close();
      await admin.end();
    }
  },
};
