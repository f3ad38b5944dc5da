// The queue's hot paths run as prepared statements against the queue tables
// (src/queue/engine/messages.ts, src/queue/engine/held.ts) instead of through the SQL
// functions they copy (sql/queue/0001_core.sql, 0002_fifo_topics_notify.sql).
// Each test here runs the TypeScript path on one queue and the SQL function on
// a twin queue with the same setup and the same inputs, then compares what
// both returned and every column of every row both left behind (times within
// a tolerance, or exactly when the input fixed them), plus the side effects
// of the queue's triggers (notifications, dead-letter bookkeeping). A drift
// of either copy fails here.
import { beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/driver/quote.js';
import type { Driver } from '../../src/driver/types.js';
import { QueueClient } from '../../src/queue/client.js';
import { epochToMessage, toMessage, type MessageRow } from '../../src/queue/rows.js';
import { QueueEngine } from '../../src/queue/engine/index.js';
import { eventually, useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const S = quoteIdent(db.queueSchema);
/** Clock slack between the two runs of one step (they run one after the other). */
const TOL_MS = 5000;
const HOUR = 3600;
const FIXED = new Date('2031-02-03T04:05:06.789Z');
const PAST = new Date('2001-02-03T04:05:06.789Z');

let driver: Driver;
let client: QueueClient;
let stmts: QueueEngine['messages'];

beforeAll(() => {
  driver = db.driver();
  client = new QueueClient({ driver, schema: db.queueSchema });
  stmts = new QueueEngine(db.queueSchema).messages;
});

type Row = Record<string, unknown>;
const sql = async <R = Row>(text: string, params: unknown[] = []): Promise<R[]> =>
  (await driver.query<R>(text, params)).rows;

let n = 0;
/**
 * Two queues set up alike: `ts` for the TypeScript path, `fn` for the SQL
 * function. `kind` picks a plain or a partitioned queue.
 */
async function twins(kind: 'plain' | 'partitioned' = 'plain'): Promise<{ ts: string; fn: string }> {
  n++;
  const pair = { ts: `par_ts_${n}`, fn: `par_fn_${n}` };
  for (const q of [pair.ts, pair.fn]) {
    if (kind === 'plain') await sql(`SELECT ${S}.create($1::text)`, [q]);
    else await sql(`SELECT ${S}.create_partitioned($1::text, '10', '100')`, [q]);
  }
  return pair;
}

/** Runs the same setup on both queues of a pair. */
async function both(pair: { ts: string; fn: string }, step: (q: string) => Promise<unknown>) {
  await step(pair.ts);
  await step(pair.fn);
}

const TIME_COLUMNS = new Set(['enqueued_at', 'last_read_at', 'vt', 'archived_at', 'due_at']);
/** Epoch ms of a time column; ±Infinity for PostgreSQL's infinities. */
function ms(v: unknown): number | null {
  if (v == null) return null;
  if (typeof v === 'number') return v; // node-postgres gives ±Infinity as numbers
  if (String(v) === 'infinity') return Infinity;
  if (String(v) === '-infinity') return -Infinity;
  const t = (v instanceof Date ? v : new Date(String(v))).getTime();
  if (Number.isNaN(t)) throw new Error(`not a time: ${String(v)}`);
  return t;
}

/** Every row of the queue's q_ (or a_) table, msg_id order, all columns. */
async function table(queue: string, prefix: 'q' | 'a' = 'q'): Promise<Row[]> {
  return sql(`SELECT * FROM ${S}.${quoteIdent(`${prefix}_${queue}`)} ORDER BY msg_id`);
}

/** Same columns, same values; time columns equal within TOL_MS (null where the other is null). */
function expectSameRows(tsRows: Row[], fnRows: Row[]): void {
  expect(tsRows.length, 'row count').toBe(fnRows.length);
  tsRows.forEach((a, i) => {
    const b = fnRows[i]!;
    expect(Object.keys(a).sort(), `columns of row ${i}`).toEqual(Object.keys(b).sort());
    for (const col of Object.keys(a)) {
      if (TIME_COLUMNS.has(col)) {
        const [x, y] = [ms(a[col]), ms(b[col])];
        expect(x === null, `${col} null in row ${i}`).toBe(y === null);
        if (x !== null && y !== null && x !== y) {
          expect(Math.abs(x - y), `${col} of row ${i}: ${x} vs ${y}`).toBeLessThanOrEqual(TOL_MS);
        }
      } else {
        expect(normalise(a[col]), `${col} of row ${i}`).toEqual(normalise(b[col]));
      }
    }
  });
}
const normalise = (v: unknown): unknown =>
  typeof v === 'bigint' || (typeof v === 'string' && /^\d+$/.test(v)) ? Number(v) : v;

async function expectSameTables(pair: { ts: string; fn: string }): Promise<void> {
  expectSameRows(await table(pair.ts), await table(pair.fn));
  expectSameRows(await table(pair.ts, 'a'), await table(pair.fn, 'a'));
}

/** The client's option for a delay given as seconds or as a time. */
const delayOption = (d: number | Date | undefined) =>
  d instanceof Date ? { deliverAt: d } : { delaySeconds: d };

const ids = (rows: Row[], col = 'id'): number[] =>
  rows.map((r) => Number(r[col])).sort((a, b) => a - b);

/** Seconds from the database clock to each row's vt. */
async function vtOffsets(queue: string): Promise<number[]> {
  const rows = await sql<{ s: number }>(
    `SELECT extract(epoch FROM vt - clock_timestamp())::float8 AS s FROM ${S}.${quoteIdent(`q_${queue}`)} ORDER BY msg_id`,
  );
  return rows.map((r) => Number(r.s));
}

describe('send mirrors send()', () => {
  it.each(['plain', 'partitioned'] as const)(
    'on a %s queue: every delay form and header form, same ids and rows',
    async (kind) => {
      const pair = await twins(kind);
      const cases: { msg: unknown; headers?: Record<string, unknown>; delay?: number | Date }[] = [
        { msg: { a: 1 } },
        { msg: { a: 2 }, headers: { h: 'x', n: 1 } },
        { msg: { a: 3 }, delay: HOUR },
        { msg: { a: 4 }, delay: FIXED },
        { msg: { a: 5 }, headers: { h: 5 }, delay: 2 * HOUR },
        { msg: { a: 6 }, headers: { h: 6 }, delay: PAST },
        { msg: [1, 'two', null] },
        { msg: 'a string' },
        { msg: null },
        { msg: { neg: true }, delay: -30 },
        { msg: { zero: true }, delay: 0 },
      ];
      for (const c of cases) {
        const tsId = await client.send(pair.ts, c.msg, {
          headers: c.headers,
          ...delayOption(c.delay),
        });
        const delay = c.delay instanceof Date ? '$4::timestamptz' : '$4::integer';
        const [fn] = await sql<{ id: string }>(
          `SELECT s AS id FROM ${S}.send($1::text, $2::jsonb, $3::jsonb, ${delay}) AS s`,
          [
            pair.fn,
            JSON.stringify(c.msg),
            c.headers ? JSON.stringify(c.headers) : null,
            c.delay ?? 0,
          ],
        );
        expect(tsId).toBe(Number(fn!.id));
      }
      await expectSameTables(pair);
      // Relations the tolerance alone would not pin down.
      for (const q of [pair.ts, pair.fn]) {
        const rows = await table(q);
        expect(ms(rows[3]!.vt)).toBe(FIXED.getTime());
        expect(ms(rows[5]!.vt)).toBe(PAST.getTime());
        const off = await vtOffsets(q);
        expect(off[2]).toBeGreaterThan(HOUR - 60);
        expect(off[2]).toBeLessThanOrEqual(HOUR);
        expect(off[4]).toBeGreaterThan(2 * HOUR - 60);
        expect(off[9]).toBeLessThanOrEqual(-30);
        expect(off[0]).toBeLessThanOrEqual(0);
      }
    },
  );

  it('fails the same way on a missing queue and on a name format_table_name refuses', async () => {
    for (const queue of ['par_missing', 'bad;name']) {
      const tsErr = await stmts.send(driver, queue, '{}', null, { kind: 'seconds', value: 0 }).then(
        () => null,
        (e: unknown) => e as { sqlState?: string; code?: string; message: string },
      );
      const fnErr = await sql(`SELECT ${S}.send($1::text, '{}'::jsonb)`, [queue]).then(
        () => null,
        (e: unknown) => e as { sqlState?: string; code?: string; message: string },
      );
      expect(tsErr, queue).not.toBeNull();
      expect(fnErr, queue).not.toBeNull();
      expect(tsErr!.sqlState ?? tsErr!.code).toBe(fnErr!.sqlState ?? fnErr!.code);
      expect(tsErr!.message).toBe(fnErr!.message);
    }
  });
});

describe('sendBatch mirrors send_batch()', () => {
  it.each(['plain', 'partitioned'] as const)(
    'on a %s queue: batches with and without headers, every delay form',
    async (kind) => {
      const pair = await twins(kind);
      const msgs = [{ b: 1 }, [2], 'th"r\\ee {x,y}', null, { b: 5, s: 'ü"\\' }];
      const headers = [{ h: 1 }, null, { h: 3 }, null, { h: 5 }];
      const cases: { headers?: (Record<string, unknown> | null)[]; delay?: number | Date }[] = [
        {},
        { headers },
        { delay: HOUR },
        { delay: FIXED },
        { headers, delay: 2 * HOUR },
        { headers, delay: PAST },
      ];
      for (const c of cases) {
        const tsIds = await client.sendBatch(pair.ts, msgs, {
          headers: c.headers,
          ...delayOption(c.delay),
        });
        const delay = c.delay instanceof Date ? '$4::timestamptz' : '$4::integer';
        const fnRows = await sql(
          `SELECT s AS id FROM ${S}.send_batch($1::text, $2::jsonb[], $3::jsonb[], ${delay}) AS s`,
          [
            pair.fn,
            msgs.map((m) => JSON.stringify(m)),
            c.headers ? c.headers.map((h) => (h === null ? null : JSON.stringify(h))) : null,
            c.delay ?? 0,
          ],
        );
        expect(tsIds).toEqual(ids(fnRows));
        // The ids follow the array order in both: message i got the i-th id.
        const q = await table(pair.ts);
        const fnTable = await table(pair.fn);
        const lastTs = q.slice(-msgs.length).map((r) => r.message);
        expect(lastTs).toEqual(fnTable.slice(-msgs.length).map((r) => r.message));
        expect(lastTs).toEqual(msgs);
      }
      await expectSameTables(pair);
      for (const q of [pair.ts, pair.fn]) {
        const rows = await table(q);
        // One vt for the whole batch, in both.
        for (let b = 0; b < cases.length; b++) {
          const vts = rows.slice(b * 5, b * 5 + 5).map((r) => ms(r.vt));
          expect(new Set(vts).size, `batch ${b} of ${q}`).toBe(1);
        }
        expect(ms(rows[15]!.vt)).toBe(FIXED.getTime());
        expect(ms(rows[25]!.vt)).toBe(PAST.getTime());
        const off = await vtOffsets(q);
        expect(off[10]).toBeGreaterThan(HOUR - 60);
        expect(off[20]).toBeGreaterThan(2 * HOUR - 60);
      }
    },
  );

  it('refuses an empty batch and mismatched headers with the SQL function’s message', async () => {
    const pair = await twins();
    for (const [msgs, headers] of [
      [[], undefined],
      [[{ a: 1 }, { a: 2 }], [{ h: 1 }]],
    ] as [unknown[], Record<string, unknown>[] | undefined][]) {
      const tsErr = await client.sendBatch(pair.ts, msgs, { headers }).then(
        () => null,
        (e: Error) => e,
      );
      const fnErr = await sql(`SELECT ${S}.send_batch($1::text, $2::jsonb[], $3::jsonb[])`, [
        pair.fn,
        msgs.map((m) => JSON.stringify(m)),
        headers ? headers.map((h) => JSON.stringify(h)) : null,
      ]).then(
        () => null,
        (e: Error) => e,
      );
      expect(tsErr?.message).toBeDefined();
      expect(tsErr!.message).toBe(fnErr!.message);
    }
    await expectSameTables(pair);
    expect(await table(pair.ts)).toEqual([]);
  });
});

/** Sends the same messages to both queues (through the SQL function: setup, not under test). */
async function seed(pair: { ts: string; fn: string }, count: number): Promise<void> {
  await both(pair, (q) =>
    sql(`SELECT ${S}.send_batch($1::text, $2::jsonb[], $3::jsonb[])`, [
      q,
      Array.from({ length: count }, (_, i) => JSON.stringify({ i })),
      Array.from({ length: count }, (_, i) => (i % 2 ? JSON.stringify({ h: i }) : null)),
    ]),
  );
}

/** Reads `qty` messages on both queues, so read_ct and last_read_at are set. */
async function readBoth(pair: { ts: string; fn: string }, qty: number, vt = 0): Promise<void> {
  await both(pair, (q) =>
    sql(`SELECT * FROM ${S}.read($1::text, $2::integer, $3::integer)`, [q, vt, qty]),
  );
}

describe('delete and archive mirror delete() and archive()', () => {
  it.each(['plain', 'partitioned'] as const)(
    'on a %s queue: arrays with missing and repeated ids, and single ids',
    async (kind) => {
      const pair = await twins(kind);
      await seed(pair, 12);
      await readBoth(pair, 4, HOUR);
      const steps: { op: 'delete' | 'archive'; ids: number[] | number }[] = [
        { op: 'delete', ids: [1, 3, 999, 3] },
        { op: 'archive', ids: [2, 4, 5, 1000, 5] },
        { op: 'delete', ids: 6 },
        { op: 'delete', ids: 6 },
        { op: 'archive', ids: 7 },
        { op: 'archive', ids: 7 },
        { op: 'archive', ids: [] },
        { op: 'delete', ids: [] },
        { op: 'archive', ids: [1, 2, 8] },
      ];
      for (const s of steps) {
        if (Array.isArray(s.ids)) {
          const tsIds =
            s.op === 'delete'
              ? await client.delete(pair.ts, s.ids)
              : await client.archive(pair.ts, s.ids);
          const fnRows = await sql(
            `SELECT x AS id FROM ${S}.${s.op}($1::text, $2::bigint[]) AS x`,
            [pair.fn, s.ids],
          );
          expect(
            [...tsIds].sort((a, b) => a - b),
            JSON.stringify(s),
          ).toEqual(ids(fnRows));
        } else {
          const tsDone =
            s.op === 'delete'
              ? await client.delete(pair.ts, s.ids)
              : await client.archive(pair.ts, s.ids);
          const [fn] = await sql<{ ok: boolean }>(
            `SELECT ${S}.${s.op}($1::text, $2::bigint) AS ok`,
            [pair.fn, s.ids],
          );
          expect(tsDone, JSON.stringify(s)).toBe(fn!.ok);
        }
      }
      await expectSameTables(pair);
      // The archive kept read_ct, last_read_at, enqueued_at, vt and headers of the moved rows.
      const archived = await table(pair.ts, 'a');
      expect(archived.map((r) => Number(r.msg_id))).toEqual([2, 4, 5, 7, 8]);
      expect(archived.map((r) => r.read_ct)).toEqual([1, 1, 0, 0, 0]);
    },
  );

  it('fails the same way on a missing queue', async () => {
    for (const op of ['delete', 'archive'] as const) {
      const tsErr = await stmts[op](driver, 'par_nothing', [1]).then(
        () => null,
        (e: Error & { sqlState?: string }) => e,
      );
      const fnErr = await sql(`SELECT ${S}.${op}('par_nothing'::text, ARRAY[1]::bigint[])`).then(
        () => null,
        (e: Error & { sqlState?: string }) => e,
      );
      expect(tsErr?.sqlState, op).toBeDefined();
      expect(tsErr!.sqlState).toBe(fnErr!.sqlState);
      expect(tsErr!.message).toBe(fnErr!.message);
    }
  });
});

describe('notify triggers fire alike', () => {
  it('an insert and a delete notify through either path; the throttle rows move alike', async () => {
    const pair = await twins();
    await both(pair, (q) => client.enableNotifyInsert(q, { throttleIntervalMs: 0 }));
    await both(pair, (q) => client.enableNotifyDelete(q, { throttleIntervalMs: 0 }));
    const heard: Record<string, number> = {};
    const subs = [];
    for (const q of [pair.ts, pair.fn]) {
      for (const event of ['insert', 'delete'] as const) {
        subs.push(
          await client.listen(
            q,
            () => (heard[`${q}.${event}`] = (heard[`${q}.${event}`] ?? 0) + 1),
            event,
          ),
        );
      }
    }
    try {
      const throttles = async (event: 'insert' | 'delete', q: string) =>
        ms(
          (
            await sql<{ t: Date }>(
              `SELECT last_notified_at AS t FROM ${S}.${quoteIdent(`notify_${event}_throttle`)} WHERE queue_name = $1`,
              [q],
            )
          )[0]!.t,
        );
      await client.send(pair.ts, { a: 1 });
      await sql(`SELECT ${S}.send($1::text, '{"a":1}'::jsonb)`, [pair.fn]);
      await client.sendBatch(pair.ts, [{ b: 1 }, { b: 2 }]);
      await sql(`SELECT ${S}.send_batch($1::text, ARRAY['{"b":1}','{"b":2}']::jsonb[])`, [pair.fn]);
      await eventually(() => heard[`${pair.ts}.insert`] === 2 && heard[`${pair.fn}.insert`] === 2);
      for (const q of [pair.ts, pair.fn]) {
        expect(await throttles('insert', q)).toBeGreaterThan(0);
        expect(await throttles('delete', q)).toBe(0);
      }
      await client.delete(pair.ts, [1]);
      await sql(`SELECT ${S}.delete($1::text, ARRAY[1]::bigint[])`, [pair.fn]);
      await client.archive(pair.ts, 2);
      await sql(`SELECT ${S}.archive($1::text, 2::bigint)`, [pair.fn]);
      await eventually(() => heard[`${pair.ts}.delete`] === 2 && heard[`${pair.fn}.delete`] === 2);
      for (const q of [pair.ts, pair.fn]) expect(await throttles('delete', q)).toBeGreaterThan(0);
      // A delete of nothing notifies neither.
      await client.delete(pair.ts, [404]);
      await sql(`SELECT ${S}.delete($1::text, ARRAY[404]::bigint[])`, [pair.fn]);
      await client.send(pair.ts, { fence: true });
      await sql(`SELECT ${S}.send($1::text, '{"fence":true}'::jsonb)`, [pair.fn]);
      await eventually(() => heard[`${pair.ts}.insert`] === 3 && heard[`${pair.fn}.insert`] === 3);
      expect(heard[`${pair.ts}.delete`]).toBe(2);
      expect(heard[`${pair.fn}.delete`]).toBe(2);
      await expectSameTables(pair);
    } finally {
      for (const s of subs) await s.close();
    }
  });
});

describe('readLocked mirrors read_locked()', () => {
  it('same rows, nothing updated, conditional filters alike, under a dead-letter policy too', async () => {
    const pair = await twins();
    const dlq = await twins();
    await seed(pair, 6);
    // Messages 1 and 2 exhausted (read once, limit 1) and visible again.
    await readBoth(pair, 2, 0);
    await sql(`SELECT ${S}.set_dead_letter_policy($1::text, $2::text, 1)`, [pair.ts, dlq.ts]);
    await sql(`SELECT ${S}.set_dead_letter_policy($1::text, $2::text, 1)`, [pair.fn, dlq.fn]);
    await both(pair, (q) => sql(`SELECT ${S}.set_vt($1::text, 3::bigint, 3600)`, [q]));
    for (const [qty, cond] of [
      [3, '{}'],
      [10, '{"i":4}'],
      [10, '{}'],
      [0, '{}'],
    ] as [number, string][]) {
      const tsRows = await driver.transaction((tx) => stmts.readLocked(tx, pair.ts, qty, cond));
      const fnRows = await driver.transaction(
        async (tx) =>
          (
            await tx.query<MessageRow>(
              `SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers FROM ${S}.read_locked($1::text, $2::integer, $3::jsonb)`,
              [pair.fn, qty, cond],
            )
          ).rows,
      );
      // The prepared read returns its timestamps as epoch seconds (rows.ts):
      // compare the decoded messages, as the client hands them out.
      const tsMsgs = tsRows.map((r) => epochToMessage(r));
      const fnMsgs = fnRows.map((r) => toMessage(r));
      expect(
        tsMsgs.map((m) => m.msgId),
        `${qty} ${cond}`,
      ).toEqual(fnMsgs.map((m) => m.msgId));
      const row = (m: (typeof tsMsgs)[number]): Row => ({
        msg_id: m.msgId,
        read_ct: m.readCount,
        enqueued_at: m.enqueuedAt,
        last_read_at: m.lastReadAt,
        vt: m.visibleAt,
        message: m.message,
        headers: m.headers,
      });
      expectSameRows(tsMsgs.map(row), fnMsgs.map(row));
    }
    // Neither path ran the dead-letter move nor touched a row.
    await expectSameTables(pair);
    await expectSameTables(dlq);
    expect(await table(dlq.ts)).toEqual([]);
    expect((await table(pair.ts)).map((r) => r.read_ct)).toEqual([1, 1, 0, 0, 0, 0]);
  });
});

describe('held finishing mirrors delete_if_held, archive_if_held, set_vt_if_held, next_visible_at', () => {
  it('current and stale receipts, seconds and timestamps, missing ids', async () => {
    const pair = await twins();
    await seed(pair, 8);
    await readBoth(pair, 8, HOUR); // read_ct 1 everywhere
    const setVtSql = (vt: number | Date) =>
      `SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers FROM ${S}.set_vt_if_held($1::text, $2::bigint, $3::integer, ${
        vt instanceof Date ? '$4::timestamptz' : '$4::integer'
      })`;
    const steps: (
      | { op: 'delete' | 'archive'; id: number; rc: number }
      | { op: 'setVt'; id: number; rc: number; vt: number | Date }
    )[] = [
      { op: 'delete', id: 1, rc: 0 },
      { op: 'delete', id: 1, rc: 1 },
      { op: 'delete', id: 1, rc: 1 },
      { op: 'archive', id: 2, rc: 2 },
      { op: 'archive', id: 2, rc: 1 },
      { op: 'archive', id: 404, rc: 1 },
      { op: 'setVt', id: 3, rc: 1, vt: 2 * HOUR },
      { op: 'setVt', id: 4, rc: 1, vt: FIXED },
      { op: 'setVt', id: 5, rc: 1, vt: -10 },
      { op: 'setVt', id: 6, rc: 7, vt: 0 },
      { op: 'setVt', id: 404, rc: 1, vt: PAST },
    ];
    for (const s of steps) {
      if (s.op === 'setVt') {
        const tsMsg = await client.setVisibilityTimeoutIfHeld(pair.ts, s.id, s.rc, s.vt);
        const fnRows = await sql<MessageRow>(setVtSql(s.vt), [pair.fn, s.id, s.rc, s.vt]);
        const fnMsg = fnRows[0] ? toMessage(fnRows[0]) : null;
        expect(tsMsg === null, JSON.stringify(s)).toBe(fnMsg === null);
        if (tsMsg && fnMsg) {
          const { visibleAt: a, enqueuedAt: e1, lastReadAt: l1, ...restTs } = tsMsg;
          const { visibleAt: b, enqueuedAt: e2, lastReadAt: l2, ...restFn } = fnMsg;
          expect(restTs).toEqual(restFn);
          expect(Math.abs(a.getTime() - b.getTime())).toBeLessThanOrEqual(TOL_MS);
          expect(Math.abs(e1.getTime() - e2.getTime())).toBeLessThanOrEqual(TOL_MS);
          expect(Math.abs(l1!.getTime() - l2!.getTime())).toBeLessThanOrEqual(TOL_MS);
          if (s.vt instanceof Date) expect(a.getTime()).toBe(s.vt.getTime());
        }
      } else {
        const ok =
          s.op === 'delete'
            ? await client.deleteIfHeld(pair.ts, s.id, s.rc)
            : await client.archiveIfHeld(pair.ts, s.id, s.rc);
        const [fn] = await sql<{ ok: boolean }>(
          `SELECT ${S}.${s.op}_if_held($1::text, $2::bigint, $3::integer) AS ok`,
          [pair.fn, s.id, s.rc],
        );
        expect(ok, JSON.stringify(s)).toBe(fn!.ok);
      }
    }
    await expectSameTables(pair);
    const off = await vtOffsets(pair.ts);
    expect(off[0]).toBeGreaterThan(2 * HOUR - 60); // msg 3
    expect(off[2]).toBeLessThanOrEqual(-10); // msg 5

    // msUntilNextVisible against next_visible_at on both queues.
    for (const q of [pair.ts, pair.fn]) {
      const tsMs = await client.msUntilNextVisible(q);
      const [fn] = await sql<{ ms: number | null }>(
        `SELECT (extract(epoch FROM ${S}.next_visible_at($1::text) - clock_timestamp()) * 1000)::float8 AS ms`,
        [q],
      );
      expect(tsMs).not.toBeNull();
      expect(Math.abs(tsMs! - Number(fn!.ms))).toBeLessThanOrEqual(TOL_MS);
    }
    const empty = await twins();
    expect(await client.msUntilNextVisible(empty.ts)).toBeNull();
    const [none] = await sql<{ t: Date | null }>(`SELECT ${S}.next_visible_at($1::text) AS t`, [
      empty.fn,
    ]);
    expect(none!.t).toBeNull();
  });

  it('set_vt on an exhausted message records when it falls due, through either path', async () => {
    const pair = await twins();
    const dlq = await twins();
    await seed(pair, 2);
    await readBoth(pair, 2, HOUR);
    await sql(`SELECT ${S}.set_dead_letter_policy($1::text, $2::text, 1)`, [pair.ts, dlq.ts]);
    await sql(`SELECT ${S}.set_dead_letter_policy($1::text, $2::text, 1)`, [pair.fn, dlq.fn]);
    const due = (q: string) =>
      // (-infinity, the policy's own entry, as a flag: drivers differ on infinite times)
      sql(
        `SELECT isfinite(due_at) AS finite, CASE WHEN isfinite(due_at) THEN due_at END AS due_at FROM ${S}._dead_letter_due WHERE queue_table = $1 ORDER BY due_at`,
        [`q_${q}`],
      );
    expect(await client.setVisibilityTimeoutIfHeld(pair.ts, 1, 1, FIXED)).not.toBeNull();
    await sql(`SELECT * FROM ${S}.set_vt_if_held($1::text, 1::bigint, 1, $2::timestamptz)`, [
      pair.fn,
      FIXED,
    ]);
    expect(await client.setVisibilityTimeoutIfHeld(pair.ts, 2, 1, 60)).not.toBeNull();
    await sql(`SELECT * FROM ${S}.set_vt_if_held($1::text, 2::bigint, 1, 60)`, [pair.fn]);
    const [tsDue, fnDue] = [await due(pair.ts), await due(pair.fn)];
    expectSameRows(tsDue, fnDue);
    expect(tsDue.map((r) => ms(r.due_at))).toContain(FIXED.getTime());
    await expectSameTables(pair);
    // The next read moves nothing yet (neither is visible) in both.
    await readBoth(pair, 10);
    await expectSameTables(pair);
    await expectSameTables(dlq);
  });
});
