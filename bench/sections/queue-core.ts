import pg from 'pg';
import { QueueClient } from '../../src/queue/client.js';
import { MESSAGE_COLUMNS, toMessage, type MessageRow } from '../../src/queue/rows.js';
import { migrate } from '../../src/migrate/migrator.js';
import { throughput, type BenchSection } from '../harness.js';
import { interleaved } from '../interleave.js';

// The PGMQ core operations through pgferry's client, each against the same
// operation done in plain SQL on an equivalent table, on the same database.
//
// How (bench/interleave.ts): both sides work on tables filled alike before
// the clock, then take turns in short slices (order rotating each round,
// after a warm-up slice each), so both drain through the same table states
// and a drift of the machine's speed over the run moves both sides of a
// round alike; the ratio judged is the median of the per-round ratios,
// printed with its spread. The baseline does the same work per call: the
// same batch size, named prepared statements on a pool of the same size,
// the same round trips per batch, every returned column decoded by `pg`.

// The queue and archive tables as a queue's (sql/queue/0001_core.sql): the
// archive has its primary key and the indexed archived_at.
const PLAIN_DDL = (t: string): string => `
  CREATE TABLE ${t} (
    msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    read_ct integer NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    last_read_at timestamptz,
    vt timestamptz NOT NULL,
    message jsonb,
    headers jsonb);
  CREATE INDEX ON ${t} (vt);
  CREATE TABLE ${t}_archive (
    msg_id bigint PRIMARY KEY,
    read_ct integer NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    last_read_at timestamptz,
    archived_at timestamptz NOT NULL DEFAULT now(),
    vt timestamptz NOT NULL,
    message jsonb,
    headers jsonb);
  CREATE INDEX ON ${t}_archive (archived_at);
`;

const COLS = 'msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers';

const BODY = JSON.stringify({
  orderId: 12345,
  customer: 'c-42',
  items: [1, 2, 3],
  note: 'benchmark payload',
});

export const queueCoreSection: BenchSection = {
  name: 'queue-core',
  description:
    'send, read + delete, read + archive: pgferry client vs plain SQL on an equivalent table',
  async run(ctx) {
    await migrate({ connectionString: ctx.url, components: ['queue'] });
    const admin = new pg.Pool({ connectionString: ctx.url, max: 4 });
    const plain = new pg.Pool({ connectionString: ctx.url, max: 4 });
    const fnRead = new pg.Pool({ connectionString: ctx.url, max: 4 });
    const client = new QueueClient({ connectionString: ctx.url, maxConnections: 4 });
    for (const p of [admin, plain, fnRead]) p.on('error', () => undefined); // idle clients dropped with the database
    const rounds = ctx.smoke ? 1 : 9;
    let made = 0;
    const fresh = async (): Promise<{ q: string; t: string; f: string }> => {
      made++;
      const [q, t, f] = [`bench_q${made}`, `bench_plain${made}`, `bench_fn${made}`];
      await client.createQueue(q);
      await client.createQueue(f);
      await admin.query(PLAIN_DDL(t));
      return { q, t, f };
    };
    const drop = async ({ q, t, f }: { q: string; t: string; f: string }): Promise<void> => {
      await client.dropQueue(q);
      await client.dropQueue(f);
      await admin.query(`DROP TABLE ${t}, ${t}_archive`);
    };
    try {
      // --- send, one message per transaction, 4 clients
      const singles = ctx.size(1500, 40);
      const body = JSON.parse(BODY) as unknown;
      let tabs = await fresh();
      const one = await interleaved(
        ctx,
        'send',
        {
          ours: () => throughput(singles, 4, 1, async () => void (await client.send(tabs.q, body))),
          // Both sides start from a JavaScript object, as an application does.
          base: () =>
            throughput(singles, 4, 1, () =>
              plain.query({
                name: `ins_${tabs.t}`,
                text: `INSERT INTO ${tabs.t} (vt, message, headers) VALUES (clock_timestamp(), $1::jsonb, NULL) RETURNING msg_id`,
                values: [JSON.stringify(body)],
              }),
            ),
        },
        rounds,
      );
      ctx.report({
        section: 'queue-core',
        operation: 'send, 1 per transaction, 4 clients',
        value: one.rate.ours!,
        unit: 'msg/s',
        baseline: { name: 'INSERT', value: one.rate.base! },
        ratio: one.ratio.ours!,
        target: { ratio: 0.85 },
      });

      // --- send_batch of 100, 4 clients
      const batched = ctx.size(20_000, 400);
      const bodies = Array.from({ length: 100 }, () => JSON.parse(BODY) as unknown);
      const many = await interleaved(
        ctx,
        'send_batch',
        {
          ours: () =>
            throughput(
              batched,
              4,
              100,
              async () => (await client.sendBatch(tabs.q, bodies)).length,
            ),
          base: () =>
            throughput(batched, 4, 100, () =>
              plain.query({
                name: `insb_${tabs.t}`,
                text: `INSERT INTO ${tabs.t} (vt, message, headers) SELECT clock_timestamp(), m, NULL FROM unnest($1::jsonb[]) AS m RETURNING msg_id`,
                values: [bodies.map((b) => JSON.stringify(b))],
              }),
            ),
        },
        rounds,
      );
      ctx.report({
        section: 'queue-core',
        operation: 'send_batch of 100, 4 clients',
        value: many.rate.ours!,
        unit: 'msg/s',
        baseline: { name: 'multi-row INSERT', value: many.rate.base! },
        ratio: many.ratio.ours!,
        target: { ratio: 0.85 },
      });
      await drop(tabs);

      // --- reading 100 at a time and finishing them, 1 and 4 consumers.
      // QueueClient.read is one prepared statement (src/queue/engine/read.ts);
      // the row marked (before) is the SQL function `read` it replaced.
      // "read" is PGMQ's visibility-timeout read: an UPDATE of vt/read_ct,
      // so its plain-SQL twin is the same UPDATE … SKIP LOCKED RETURNING.
      // processBatch holds row locks in one transaction instead (no
      // visibility timeout); its twin is SELECT … FOR UPDATE SKIP LOCKED +
      // DELETE in one transaction.
      const slice = ctx.size(6000, 400);
      const prefill = slice * (rounds + 2); // rounds, the warm-up, a spare
      const readSql = (t: string): string =>
        `WITH cte AS (SELECT msg_id FROM ${t} WHERE vt <= clock_timestamp() ORDER BY msg_id LIMIT 100 FOR UPDATE SKIP LOCKED)
         UPDATE ${t} m SET vt = clock_timestamp() + make_interval(secs => 30), read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
           FROM cte WHERE m.msg_id = cte.msg_id
         RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers`;
      const archiveSql = (t: string): string =>
        `WITH moved AS (DELETE FROM ${t} WHERE msg_id = ANY($1::bigint[]) RETURNING ${COLS})
         INSERT INTO ${t}_archive (${COLS}) SELECT ${COLS} FROM moved`;
      type Mode = 'read+delete' | 'read+archive' | 'processBatch+delete';
      const modes: { mode: Mode; baseline: string; target?: number }[] = [
        { mode: 'read+delete', baseline: 'UPDATE … SKIP LOCKED RETURNING + DELETE', target: 0.9 },
        {
          mode: 'processBatch+delete',
          baseline: 'BEGIN; SELECT … FOR UPDATE SKIP LOCKED; DELETE; COMMIT',
          target: 0.9,
        },
        { mode: 'read+archive', baseline: 'UPDATE … SKIP LOCKED RETURNING + move to archive' },
      ];
      const fill = async (q: string, t: string, f: string | null): Promise<void> => {
        for (let i = 0; i < prefill; i += 1000) {
          const n = Math.min(1000, prefill - i);
          const some = Array.from({ length: n }, () => bodies[0]);
          await client.sendBatch(q, some);
          if (f) await client.sendBatch(f, some);
          await admin.query(
            `INSERT INTO ${t} (vt, message) SELECT clock_timestamp(), $1::jsonb FROM generate_series(1, $2)`,
            [BODY, n],
          );
        }
        for (const table of [
          t,
          `${client.schema}.q_${q}`,
          ...(f ? [`${client.schema}.q_${f}`] : []),
        ])
          await admin.query(`VACUUM ANALYZE ${table}`);
      };
      for (const { mode, baseline, target } of modes) {
        for (const consumers of [1, 4]) {
          tabs = await fresh();
          const { q, t, f } = tabs;
          await fill(q, t, mode === 'read+delete' ? f : null);
          const base = () =>
            throughput(slice, consumers, 100, async () => {
              if (mode === 'processBatch+delete') {
                const conn = await plain.connect();
                try {
                  await conn.query('BEGIN');
                  const got = await conn.query<{ msg_id: string }>({
                    name: `sel_${t}`,
                    text: `SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers FROM ${t} WHERE vt <= clock_timestamp() ORDER BY msg_id LIMIT 100 FOR UPDATE SKIP LOCKED`,
                  });
                  await conn.query({
                    name: `del_${t}`,
                    text: `DELETE FROM ${t} WHERE msg_id = ANY($1::bigint[])`,
                    values: [got.rows.map((r) => r.msg_id)],
                  });
                  await conn.query('COMMIT');
                  return got.rows.length;
                } finally {
                  conn.release();
                }
              }
              const got = await plain.query<{ msg_id: string }>({
                name: `read_${t}`,
                text: readSql(t),
              });
              const ids = got.rows.map((r) => r.msg_id);
              if (ids.length) {
                await plain.query(
                  mode === 'read+delete'
                    ? {
                        name: `del_${t}`,
                        text: `DELETE FROM ${t} WHERE msg_id = ANY($1::bigint[])`,
                        values: [ids],
                      }
                    : { name: `arch_${t}`, text: archiveSql(t), values: [ids] },
                );
              }
              return ids.length;
            });
          const ours = () =>
            throughput(slice, consumers, 100, async () => {
              if (mode === 'processBatch+delete')
                return client.processBatch(q, async () => undefined, { qty: 100 });
              const msgs = await client.read(q, { qty: 100, visibilityTimeoutMs: 30_000 });
              const ids = msgs.map((m) => m.msgId);
              if (ids.length) {
                if (mode === 'read+delete') await client.delete(q, ids);
                else await client.archive(q, ids);
              }
              return ids.length;
            });
          // The previous client path, for old vs new in the same run: the
          // SQL function `read` (prepared call) + the prepared delete, every
          // column decoded as the client does (like for like).
          const before = () =>
            throughput(slice, consumers, 100, async () => {
              const got = await fnRead.query<MessageRow>({
                name: `fnread_${f}`,
                text: `SELECT ${MESSAGE_COLUMNS} FROM ${client.schema}.read($1::text, 30, 100)`,
                values: [f],
              });
              const ids = got.rows
                .map((r) => toMessage(r))
                .sort((a, b) => a.msgId - b.msgId)
                .map((m) => m.msgId);
              if (ids.length) await client.delete(f, ids);
              return ids.length;
            });
          const plural = `${consumers} consumer${consumers > 1 ? 's' : ''}`;
          const res = await interleaved(
            ctx,
            `${mode}, ${plural}`,
            mode === 'read+delete' ? { ours, before, base } : { ours, base },
            rounds,
          );
          ctx.report({
            section: 'queue-core',
            operation: `${mode.replace('+', ' 100 + ')}, ${plural}`,
            value: res.rate.ours!,
            unit: 'msg/s',
            baseline: { name: baseline, value: res.rate.base! },
            ratio: res.ratio.ours!,
            ...(target ? { target: { ratio: target } } : {}),
          });
          if (mode === 'read+delete')
            ctx.report({
              section: 'queue-core',
              operation: `(before) SQL read() 100 + delete, ${plural}`,
              value: res.rate.before!,
              unit: 'msg/s',
              baseline: { name: baseline, value: res.rate.base! },
              ratio: res.ratio.before!,
            });
          await drop(tabs);
        }
      }
    } finally {
      await client.close();
      await fnRead.end();
      await plain.end();
      await admin.end();
    }
  },
};
