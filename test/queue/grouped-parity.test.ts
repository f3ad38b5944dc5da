// FIFO group reads without polling run as one prepared statement
// (src/queue/engine/grouped.ts) and fall back to the SQL function when that
// statement does not settle the read. Each test here runs the same steps on
// two queues set up alike, the TypeScript path (QueueClient.readGrouped*) on
// one and the SQL function (read_grouped, _rr, _head) on the other, and
// compares what every read returned (ids in order, read counts, vt) and both
// tables afterwards. The engine is also asked directly whether it settled the
// read itself, so a test proves the path it means to.
import { beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/driver/quote.js';
import type { Driver } from '../../src/driver/types.js';
import { QueueClient } from '../../src/queue/client.js';
import { QueueEngine } from '../../src/queue/engine/index.js';
import type { GroupedMode } from '../../src/queue/engine/grouped.js';
import type { GroupedReadMode } from '../../src/queue/grouped.js';
import type { Message } from '../../src/queue/types.js';
import { connections } from '../support/connections.js';
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

const MODES: [GroupedReadMode, GroupedMode, string][] = [
  ['grouped', 'grouped', 'read_grouped'],
  ['roundRobin', 'rr', 'read_grouped_rr'],
  ['head', 'head', 'read_grouped_head'],
];

let n = 0;
interface Pair {
  ts: string;
  fn: string;
}

/**
 * Twin queues: `groups` groups of `perGroup` messages, interleaved or in
 * blocks; every `noGroup`-th message without a group header (default group).
 */
async function twins(
  groups: number,
  perGroup: number,
  o: { order?: 'interleaved' | 'blocks'; index?: boolean; noGroup?: number } = {},
): Promise<Pair> {
  n++;
  const pair = { ts: `gp_ts_${n}`, fn: `gp_fn_${n}` };
  const outer = (o.order ?? 'interleaved') === 'interleaved' ? 'seq, grp' : 'grp, seq';
  for (const q of [pair.ts, pair.fn]) {
    await sql(`SELECT ${S}.create($1::text)`, [q]);
    await sql(
      `SELECT ${S}.send_batch($1::text,
          array_agg(jsonb_build_object('g', grp, 's', seq) ORDER BY ${outer}),
          array_agg(CASE WHEN $4::int > 0 AND (grp * $3 + seq) % $4 = 0 THEN NULL
                         ELSE jsonb_build_object('x-pgmq-group', 'g' || grp) END ORDER BY ${outer}))
         FROM generate_series(0, $2::int - 1) grp, generate_series(0, $3::int - 1) seq`,
      [q, groups, perGroup, o.noGroup ?? 0],
    );
    if (o.index ?? true) await sql(`SELECT ${S}.create_fifo_index($1::text)`, [q]);
  }
  return pair;
}

async function table(queue: string): Promise<Row[]> {
  return sql(`SELECT * FROM ${S}.${quoteIdent(`q_${queue}`)} ORDER BY msg_id`);
}

function sameTime(a: unknown, b: unknown, what: string): void {
  const [x, y] = [
    a == null ? null : new Date(a as string).getTime(),
    b == null ? null : new Date(b as string).getTime(),
  ];
  expect(x === null, what).toBe(y === null);
  if (x !== null && y !== null) expect(Math.abs(x - y), what).toBeLessThanOrEqual(TOL_MS);
}

async function expectSameTables(pair: Pair): Promise<void> {
  const [a, b] = [await table(pair.ts), await table(pair.fn)];
  expect(a.map((r) => Number(r.msg_id))).toEqual(b.map((r) => Number(r.msg_id)));
  a.forEach((r, i) => {
    const s = b[i]!;
    expect(r.read_ct, `read_ct of ${String(r.msg_id)}`).toBe(s.read_ct);
    expect(r.message).toEqual(s.message);
    expect(r.headers).toEqual(s.headers);
    for (const c of ['vt', 'last_read_at', 'enqueued_at'])
      sameTime(r[c], s[c], `${c} of ${String(r.msg_id)}`);
  });
}

interface ReadStep {
  qty: number;
  vt?: number | Date;
}

/** The SQL function's read on `q` (messages as the client maps them). */
async function fnRead(fn: string, q: string, s: ReadStep): Promise<Row[]> {
  const vt = s.vt instanceof Date ? '$2::timestamptz' : '$2::integer';
  return sql(`SELECT * FROM ${S}.${fn}($1::text, ${vt}, $3::integer)`, [q, s.vt ?? 30, s.qty]);
}

const tsOptions = (s: ReadStep) =>
  s.vt instanceof Date
    ? { qty: s.qty, visibleUntil: s.vt }
    : { qty: s.qty, visibilityTimeoutMs: (s.vt ?? 30) * 1000 };

/** One read on both twins; the results must match, in order. */
async function readBoth(
  mode: GroupedReadMode,
  fn: string,
  pair: Pair,
  s: ReadStep,
): Promise<number[]> {
  const ts: Message<unknown>[] = await client.readGroupedBy(pair.ts, mode, tsOptions(s));
  const fr = await fnRead(fn, pair.fn, s);
  expect(
    ts.map((m) => m.msgId),
    `${fn} qty ${s.qty}`,
  ).toEqual(fr.map((r) => Number(r.msg_id)));
  ts.forEach((m, i) => {
    expect(m.readCount).toBe(Number(fr[i]!.read_ct));
    expect(m.message).toEqual(fr[i]!.message);
    sameTime(m.visibleAt, fr[i]!.vt, 'vt');
  });
  return ts.map((m) => m.msgId);
}

/** Whether the prepared statement settles a read of `q` now (run in a rolled-back transaction). */
async function settles(q: string, mode: GroupedMode, qty: number): Promise<boolean> {
  return driver
    .transaction(async (tx) => {
      const rows = await engine.grouped.read(tx, q, mode, qty, [30, 'integer']);
      await tx.query('SELECT 1');
      throw Object.assign(new Error('rollback'), { settled: rows !== null });
    })
    .catch((e: { settled?: boolean }) => {
      if (e.settled === undefined) throw e;
      return e.settled;
    });
}

const deleteBoth = async (pair: Pair, ids: number[]): Promise<void> => {
  await client.delete(pair.ts, ids);
  await sql(`SELECT ${S}.delete($1::text, $2::bigint[])`, [pair.fn, ids]);
};

describe('group reads: the prepared statement mirrors the SQL function', () => {
  for (const [mode, sqlMode, fn] of MODES) {
    it(`${fn}: many groups interleaved, reads and deletes until drained`, async () => {
      const pair = await twins(40, 6, { noGroup: 7 });
      expect(await settles(pair.ts, sqlMode, 5)).toBe(true);
      let left = 40 * 6;
      let i = 0;
      while (left > 0 && i < 200) {
        const qty = [1, 5, 12, 3, 30][i % 5]!;
        const got = await readBoth(mode, fn, pair, { qty, vt: i % 2 ? 0 : 30 });
        // Delete every other read's messages; the others stay in flight or come back (vt 0).
        if (i % 3 !== 2) await deleteBoth(pair, got);
        left = Number(
          (
            await sql<{ c: string }>(`SELECT count(*) AS c FROM ${S}.${quoteIdent(`q_${pair.ts}`)}`)
          )[0]!.c,
        );
        if (got.length === 0)
          await sql(
            `UPDATE ${S}.${quoteIdent(`q_${pair.ts}`)} SET vt = now() - interval '1 s'`,
          ).then(() =>
            sql(`UPDATE ${S}.${quoteIdent(`q_${pair.fn}`)} SET vt = now() - interval '1 s'`),
          );
        i++;
      }
      expect(left).toBe(0);
      await expectSameTables(pair);
    });

    it(`${fn}: groups in blocks, few groups in the prefix, and visibleUntil`, async () => {
      const pair = await twins(8, 40, { order: 'blocks' });
      const until = new Date(Date.now() + 3_600_000);
      for (const qty of [1, 4, 10, 50]) await readBoth(mode, fn, pair, { qty, vt: until });
      await expectSameTables(pair);
    });

    it(`${fn}: a small queue (the prefix is the whole queue), fewer groups than qty`, async () => {
      const pair = await twins(3, 4);
      // head and grouped take what there is; rr needs later rounds: the function's full pass.
      expect(await settles(pair.ts, sqlMode, 10)).toBe(sqlMode !== 'rr');
      for (const qty of [10, 2, 10, 10]) await readBoth(mode, fn, pair, { qty });
      await expectSameTables(pair);
    });

    it(`${fn}: a group held by another session is skipped by both`, async () => {
      const pair = await twins(5, 3);
      const [other] = await connections(db, 1);
      await other!.query('BEGIN');
      await other!.query(`SELECT pg_advisory_xact_lock(hashtextextended('g1', 0))`);
      try {
        for (const qty of [2, 4, 3]) await readBoth(mode, fn, pair, { qty, vt: 0 });
      } finally {
        await other!.query('ROLLBACK');
      }
      await expectSameTables(pair);
    });

    it(`${fn}: qty 0, and a missing queue fails alike`, async () => {
      const pair = await twins(2, 2);
      await readBoth(mode, fn, pair, { qty: 0 });
      const tsErr = await client.readGroupedBy('gp_missing', mode, { qty: 3 }).then(
        () => null,
        (e: { code?: string; sqlState?: string; message: string }) => e,
      );
      const fnErr = await fnRead(fn, 'gp_missing', { qty: 3 }).then(
        () => null,
        (e: { code?: string; sqlState?: string; message: string }) => e,
      );
      expect(tsErr).not.toBeNull();
      expect(tsErr!.sqlState ?? tsErr!.code).toBe(fnErr!.sqlState ?? fnErr!.code);
      expect(tsErr!.message).toBe(fnErr!.message);
    });

    it(`${fn}: dead letters due are moved first (the function's _before_read)`, async () => {
      const pair = await twins(4, 3);
      n++;
      const dlq = `gp_dlq_${n}`;
      const dlq2 = `gp_dlq2_${n}`;
      await sql(`SELECT ${S}.create($1::text)`, [dlq]);
      await sql(`SELECT ${S}.create($1::text)`, [dlq2]);
      await sql(`SELECT ${S}.set_dead_letter_policy($1::text, $2::text, 1)`, [pair.ts, dlq]);
      await sql(`SELECT ${S}.set_dead_letter_policy($1::text, $2::text, 1)`, [pair.fn, dlq2]);
      // Every read makes its messages exhausted; vt 0 lets them fall due at once.
      expect(await settles(pair.ts, sqlMode, 2)).toBe(false);
      for (const qty of [2, 3, 2, 5]) await readBoth(mode, fn, pair, { qty, vt: 0 });
      await expectSameTables(pair);
      const count = async (q: string) =>
        Number(
          (await sql<{ c: string }>(`SELECT count(*) AS c FROM ${S}.${quoteIdent(`q_${q}`)}`))[0]!
            .c,
        );
      expect(await count(dlq)).toBe(await count(dlq2));
    });
  }

  it('read_grouped without the group-key index: the function (full pass)', async () => {
    const pair = await twins(6, 4, { index: false });
    expect(await settles(pair.ts, 'grouped', 3)).toBe(false);
    for (const qty of [3, 5, 1]) await readBoth('grouped', 'read_grouped', pair, { qty });
    await expectSameTables(pair);
  });

  it('read_grouped: a candidate taken by a plain read in between leaves the read to the function', async () => {
    const pair = await twins(3, 6, { order: 'blocks' });
    // g0's second message is in flight (taken out of order by a plain set_vt): the function's
    // short path still applies (every candidate it lists is visible), and both agree.
    for (const q of [pair.ts, pair.fn])
      await sql(`SELECT ${S}.set_vt($1::text, 2::bigint, 60)`, [q]);
    await readBoth('grouped', 'read_grouped', pair, { qty: 4 });
    await readBoth('grouped', 'read_grouped', pair, { qty: 4, vt: 0 });
    await expectSameTables(pair);
  });
});
