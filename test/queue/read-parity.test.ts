// QueueClient.read runs as one prepared statement (src/queue/engine/read.ts)
// instead of calling the SQL function `read` (sql/queue/0001_core.sql), and
// defers to the function when dead letters are due. Each test runs the same
// steps on two queues set up alike, the client on one and the SQL function on
// the other, and compares what every read returned and both tables after.
import { beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/driver/quote.js';
import type { Driver } from '../../src/driver/types.js';
import { QueueClient } from '../../src/queue/client.js';
import { QueueEngine } from '../../src/queue/engine/index.js';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const S = quoteIdent(db.queueSchema);
const TOL_MS = 5000;

let driver: Driver;
let client: QueueClient;
let engine: QueueEngine;

beforeAll(() => {
  driver = db.driver();
  client = new QueueClient({ driver, schema: db.queueSchema });
  engine = new QueueEngine(db.queueSchema);
});

type Row = Record<string, unknown>;
const sql = async <R = Row>(text: string, params: unknown[] = []): Promise<R[]> =>
  (await driver.query<R>(text, params)).rows;

let n = 0;
interface Pair {
  ts: string;
  fn: string;
}

async function twins(kind: 'plain' | 'partitioned', count: number): Promise<Pair> {
  n++;
  const pair = { ts: `rp_ts_${n}`, fn: `rp_fn_${n}` };
  for (const q of [pair.ts, pair.fn]) {
    if (kind === 'plain') await sql(`SELECT ${S}.create($1::text)`, [q]);
    else await sql(`SELECT ${S}.create_partitioned($1::text, '10', '100')`, [q]);
    await sql(
      `SELECT ${S}.send_batch($1::text, array_agg(jsonb_build_object('i', i, 'odd', i % 2 = 1) ORDER BY i))
         FROM generate_series(1, $2::int) i`,
      [q, count],
    );
  }
  return pair;
}

const table = (q: string): Promise<Row[]> =>
  sql(`SELECT * FROM ${S}.${quoteIdent(`q_${q}`)} ORDER BY msg_id`);

function sameTime(a: unknown, b: unknown, what: string): void {
  const t = (v: unknown) => (v == null ? null : new Date(v as string).getTime());
  const [x, y] = [t(a), t(b)];
  expect(x === null, what).toBe(y === null);
  if (x !== null && y !== null) expect(Math.abs(x - y), what).toBeLessThanOrEqual(TOL_MS);
}

async function expectSameTables(pair: Pair): Promise<void> {
  const [a, b] = [await table(pair.ts), await table(pair.fn)];
  expect(a.map((r) => Number(r.msg_id))).toEqual(b.map((r) => Number(r.msg_id)));
  a.forEach((r, i) => {
    const s = b[i]!;
    expect(r.read_ct).toBe(s.read_ct);
    expect(r.message).toEqual(s.message);
    for (const c of ['vt', 'last_read_at', 'enqueued_at'])
      sameTime(r[c], s[c], `${c} of ${String(r.msg_id)}`);
  });
}

interface Step {
  qty: number;
  vt?: number | Date;
  conditional?: Record<string, unknown>;
}

async function readBoth(pair: Pair, s: Step): Promise<number[]> {
  const ts = await client.read(pair.ts, {
    qty: s.qty,
    conditional: s.conditional,
    ...(s.vt instanceof Date
      ? { visibleUntil: s.vt }
      : { visibilityTimeoutMs: (s.vt ?? 30) * 1000 }),
  });
  const vt = s.vt instanceof Date ? '$2::timestamptz' : '$2::integer';
  const fr = (
    await sql(`SELECT * FROM ${S}.read($1::text, ${vt}, $3::integer, $4::jsonb)`, [
      pair.fn,
      s.vt ?? 30,
      s.qty,
      JSON.stringify(s.conditional ?? {}),
    ])
  ).sort((a, b) => Number(a.msg_id) - Number(b.msg_id));
  expect(ts.map((m) => m.msgId)).toEqual(fr.map((r) => Number(r.msg_id)));
  ts.forEach((m, i) => {
    expect(m.readCount).toBe(Number(fr[i]!.read_ct));
    expect(m.message).toEqual(fr[i]!.message);
    sameTime(m.visibleAt, fr[i]!.vt, 'vt');
    sameTime(m.lastReadAt, fr[i]!.last_read_at, 'last_read_at');
  });
  return ts.map((m) => m.msgId);
}

describe('read: the prepared statement mirrors the SQL function', () => {
  it.each(['plain', 'partitioned'] as const)(
    'on a %s queue: qty, conditional, vt forms, reads and deletes',
    async (kind) => {
      const pair = await twins(kind, 60);
      const settled = await engine.reader.read(driver, pair.ts, 0, '{}', [30, 'integer']);
      expect(settled).toEqual([]);
      const steps: Step[] = [
        { qty: 1 },
        { qty: 7, vt: 0 },
        { qty: 5, conditional: { odd: true } },
        { qty: 0 },
        { qty: 20, vt: new Date(Date.now() + 3_600_000) },
        { qty: 4, vt: 0, conditional: { i: 50 } },
        { qty: 100, vt: -5 },
        { qty: 3 },
        { qty: 10, vt: 0, conditional: { odd: false } },
        { qty: 10, conditional: {} },
      ];
      for (const [i, s] of steps.entries()) {
        const got = await readBoth(pair, s);
        if (i % 2 === 0 && got.length) {
          await client.delete(pair.ts, got);
          await sql(`SELECT ${S}.delete($1::text, $2::bigint[])`, [pair.fn, got]);
        }
      }
      await expectSameTables(pair);
    },
  );

  it('dead letters due: the SQL function runs (it moves them first)', async () => {
    const pair = await twins('plain', 6);
    n++;
    for (const [q, d] of [
      [pair.ts, `rp_dlq_a_${n}`],
      [pair.fn, `rp_dlq_b_${n}`],
    ] as const) {
      await sql(`SELECT ${S}.create($1::text)`, [d]);
      await sql(`SELECT ${S}.set_dead_letter_policy($1::text, $2::text, 1)`, [q, d]);
    }
    expect(await engine.reader.read(driver, pair.ts, 2, '{}', [0, 'integer'])).toBeNull();
    for (const qty of [2, 3, 2, 4]) await readBoth(pair, { qty, vt: 0 });
    await expectSameTables(pair);
    const count = async (q: string) =>
      (await sql(`SELECT * FROM ${S}.${quoteIdent(`q_${q}`)}`)).length;
    expect(await count(`rp_dlq_a_${n}`)).toBe(await count(`rp_dlq_b_${n}`));
  });

  it('fails the same way on a missing queue', async () => {
    const tsErr = await client.read('rp_missing', { qty: 1 }).then(
      () => null,
      (e: { code?: string; sqlState?: string; message: string }) => e,
    );
    const fnErr = await sql(`SELECT * FROM ${S}.read('rp_missing'::text, 30, 1)`).then(
      () => null,
      (e: { code?: string; sqlState?: string; message: string }) => e,
    );
    expect(tsErr).not.toBeNull();
    expect(tsErr!.sqlState ?? tsErr!.code).toBe(fnErr!.sqlState ?? fnErr!.code);
    expect(tsErr!.message).toBe(fnErr!.message);
  });
});
