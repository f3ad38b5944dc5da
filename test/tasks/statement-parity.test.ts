// The tasks enqueue runs as prepared INSERTs straight into the task's queue
// table (src/tasks/statements.ts: enqueue, enqueueBatch) instead of through
// the SQL function it copies, `<tasks>.enqueue` (sql/tasks/0001_core.sql).
// Here both run on twin tasks with the same inputs: same results (ids,
// duplicates), same rows (every column, times within a tolerance or exactly
// when the input fixed them), same wake-up side effects. The worker's
// prepared lease of plain tasks has its twin test in fetch-parity.test.ts;
// complete, retry, dead_letter, hand_back and extend are not copies: the
// statements call those SQL functions themselves, so they need no twin.
import { beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/driver/quote.js';
import type { Driver } from '../../src/driver/types.js';
import { H } from '../../src/tasks/headers.js';
import { TaskStatements, type RunAt } from '../../src/tasks/statements.js';
import { eventually, useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const Q = quoteIdent(db.queueSchema);
const TASKS = 'pgferry_tasks';
const T = quoteIdent(TASKS);
const TOL_MS = 5000;
const FIXED = new Date('2031-02-03T04:05:06.789Z');
const PAST = new Date('2001-02-03T04:05:06.789Z');
const HOUR_MS = 3_600_000;

let driver: Driver;
let stmts: TaskStatements;
beforeAll(() => {
  driver = db.driver();
  stmts = new TaskStatements(db.queueSchema, TASKS);
});

type Row = Record<string, unknown>;
const sql = async <R = Row>(text: string, params: unknown[] = []): Promise<R[]> =>
  (await driver.query<R>(text, params)).rows;

let n = 0;
async function twins(): Promise<{ ts: string; fn: string }> {
  n++;
  const pair = { ts: `tpar_ts_${n}`, fn: `tpar_fn_${n}` };
  for (const q of [pair.ts, pair.fn]) await stmts.ensureTask(driver, q, false, false);
  return pair;
}

interface Job {
  input: unknown;
  key?: string;
  runAt: RunAt;
  extra?: Record<string, unknown>;
}
const headersOf = (j: Job): string =>
  JSON.stringify({
    ...j.extra,
    [H.task]: 'same',
    ...(j.key === undefined ? {} : { [H.idempotencyKey]: j.key }),
  });

/** `<tasks>.enqueue`, with a delay turned into a run_at on the database clock. */
async function enqueueSql(queue: string, j: Job): Promise<{ id: number; duplicate: boolean }> {
  const [r] = await sql<{ msg_id: string; duplicate: boolean }>(
    `SELECT * FROM ${T}.enqueue($1::text, $2::jsonb, $3::jsonb,
       COALESCE($4::timestamptz, CASE WHEN $5::float8 > 0 THEN clock_timestamp() + make_interval(secs => $5::float8 / 1000) END))`,
    [queue, JSON.stringify(j.input), headersOf(j), j.runAt.at, j.runAt.delayMs],
  );
  return { id: Number(r!.msg_id), duplicate: r!.duplicate };
}

const TIME_COLUMNS = new Set(['enqueued_at', 'last_read_at', 'vt', 'archived_at']);
const ms = (v: unknown): number | null =>
  v == null ? null : (v instanceof Date ? v : new Date(String(v))).getTime();
const num = (v: unknown): unknown =>
  typeof v === 'bigint' || (typeof v === 'string' && /^\d+$/.test(v)) ? Number(v) : v;

async function table(queue: string): Promise<Row[]> {
  return sql(`SELECT * FROM ${Q}.${quoteIdent(`q_${queue}`)} ORDER BY msg_id`);
}

async function expectSameTables(pair: { ts: string; fn: string }): Promise<void> {
  const [a, b] = [await table(pair.ts), await table(pair.fn)];
  expect(a.length, 'row count').toBe(b.length);
  a.forEach((ra, i) => {
    const rb = b[i]!;
    expect(Object.keys(ra).sort()).toEqual(Object.keys(rb).sort());
    for (const col of Object.keys(ra)) {
      if (TIME_COLUMNS.has(col)) {
        const [x, y] = [ms(ra[col]), ms(rb[col])];
        expect(x === null, `${col} null in row ${i}`).toBe(y === null);
        if (x !== null && y !== null)
          expect(Math.abs(x - y), `${col} of row ${i}`).toBeLessThanOrEqual(TOL_MS);
      } else {
        expect(num(ra[col]), `${col} of row ${i}`).toEqual(num(rb[col]));
      }
    }
  });
}

describe('enqueue mirrors <tasks>.enqueue', () => {
  it('run now, at a time, after a delay; idempotency keys new, duplicate and freed', async () => {
    const pair = await twins();
    const steps: (Job | { finish: number })[] = [
      { input: { a: 1 }, runAt: { at: null, delayMs: 0 } },
      { input: { a: 2 }, runAt: { at: FIXED, delayMs: 0 } },
      { input: { a: 3 }, runAt: { at: PAST, delayMs: 0 } },
      { input: { a: 4 }, runAt: { at: null, delayMs: HOUR_MS } },
      { input: [1, 'x'], key: 'k1', runAt: { at: null, delayMs: 0 }, extra: { h: 1 } },
      { input: { other: true }, key: 'k1', runAt: { at: FIXED, delayMs: 0 } },
      { input: null, key: 'k2', runAt: { at: null, delayMs: 1500 } },
      { finish: 5 }, // the job holding k1 finishes: the key is free again
      { input: { again: 1 }, key: 'k1', runAt: { at: null, delayMs: 0 } },
      { input: { again: 2 }, key: 'k1', runAt: { at: null, delayMs: 0 } },
    ];
    for (const s of steps) {
      if ('finish' in s) {
        for (const q of [pair.ts, pair.fn])
          await sql(`SELECT ${Q}.delete($1::text, $2::bigint)`, [q, s.finish]);
        continue;
      }
      const ts = await stmts.enqueue(
        driver,
        pair.ts,
        JSON.stringify(s.input),
        headersOf(s),
        s.key,
        s.runAt,
      );
      const fn = await enqueueSql(pair.fn, s);
      expect(ts, JSON.stringify(s)).toEqual(fn);
    }
    await expectSameTables(pair);
    for (const q of [pair.ts, pair.fn]) {
      const rows = await table(q);
      expect(ms(rows[1]!.vt)).toBe(FIXED.getTime());
      expect(ms(rows[2]!.vt)).toBe(PAST.getTime());
      const [off] = await sql<{ s: number }>(
        `SELECT extract(epoch FROM vt - clock_timestamp())::float8 AS s FROM ${Q}.${quoteIdent(`q_${q}`)} WHERE msg_id = 4`,
      );
      expect(Number(off!.s)).toBeGreaterThan(3600 - 60);
      expect(Number(off!.s)).toBeLessThanOrEqual(3600);
    }
  });

  it('a batch equals the same jobs enqueued one by one (keys repeated, taken, new)', async () => {
    const pair = await twins();
    const held: Job = { input: { held: true }, key: 'taken', runAt: { at: null, delayMs: 0 } };
    expect(
      await stmts.enqueue(
        driver,
        pair.ts,
        JSON.stringify(held.input),
        headersOf(held),
        'taken',
        held.runAt,
      ),
    ).toEqual(await enqueueSql(pair.fn, held));
    const jobs: Job[] = [
      { input: { b: 1 }, runAt: { at: null, delayMs: 0 } },
      { input: { b: 2 }, key: 'k2', runAt: { at: FIXED, delayMs: 0 } },
      { input: { b: 3 }, key: 'k2', runAt: { at: null, delayMs: 0 } },
      { input: { b: 4 }, key: 'taken', runAt: { at: null, delayMs: 0 } },
      { input: { b: 5 }, runAt: { at: null, delayMs: HOUR_MS } },
      { input: { b: 6 }, key: 'k6', runAt: { at: PAST, delayMs: 0 }, extra: { z: [1] } },
    ];
    const ts = await stmts.enqueueBatch(
      driver,
      pair.ts,
      jobs.map((j) => JSON.stringify(j.input)),
      jobs.map(headersOf),
      jobs.map((j) => j.key),
      jobs.map((j) => j.runAt),
    );
    const fn = [];
    for (const j of jobs) fn.push(await enqueueSql(pair.fn, j));
    expect(ts).toEqual(fn);
    expect(ts.map((r) => r.duplicate)).toEqual([false, false, true, true, false, false]);
    await expectSameTables(pair);
  });

  it('a batch carries any JSON input intact (quotes, backslashes, unicode, null, arrays), all due now', async () => {
    const pair = await twins();
    const inputs: unknown[] = [
      { s: 'a "quoted" \\ back\\slash', t: '{not,an,array}', u: 'ünï €😀 \n' },
      null,
      'null',
      [1, [2, { three: null }], '"'],
      42.5,
      { nested: { deep: ['}', ']', ',', 'NULL'] } },
    ];
    const jobs: Job[] = inputs.map((input) => ({ input, runAt: { at: null, delayMs: 0 } }));
    const ts = await stmts.enqueueBatch(
      driver,
      pair.ts,
      jobs.map((j) => JSON.stringify(j.input)),
      jobs.map(headersOf),
      jobs.map(() => undefined),
      jobs.map((j) => j.runAt),
    );
    const fn = [];
    for (const j of jobs) fn.push(await enqueueSql(pair.fn, j));
    expect(ts).toEqual(fn);
    const stored = await sql<{ message: unknown }>(
      `SELECT message FROM ${Q}.q_${pair.ts} ORDER BY msg_id`,
    );
    expect(stored.map((r) => r.message)).toEqual(inputs);
    await expectSameTables(pair);
  });

  it('the wake-up trigger clears the waiting flag and notifies alike', async () => {
    const pair = await twins();
    const heard: string[] = [];
    const job: Job = { input: { w: 1 }, runAt: { at: null, delayMs: 0 } };
    const sub = await driver.listen(`${TASKS}_wake`, (p) => heard.push(p ?? ''));
    try {
      for (const round of [1, 2]) {
        // round 1: a worker sleeps on each queue; round 2: nobody does.
        if (round === 1) {
          await sql(`UPDATE ${T}.queues SET waiting = true WHERE queue_name = ANY($1::text[])`, [
            [pair.ts, pair.fn],
          ]);
        }
        await stmts.enqueue(
          driver,
          pair.ts,
          JSON.stringify(job.input),
          headersOf(job),
          undefined,
          job.runAt,
        );
        await enqueueSql(pair.fn, job);
        const flags = await sql<{ queue_name: string; waiting: boolean }>(
          `SELECT queue_name, waiting FROM ${T}.queues WHERE queue_name = ANY($1::text[]) ORDER BY queue_name`,
          [[pair.ts, pair.fn]],
        );
        expect(flags.map((f) => f.waiting)).toEqual([false, false]);
        if (round === 1) await eventually(() => heard.includes(pair.ts) && heard.includes(pair.fn));
      }
      // A fence: notifications arrive in commit order, so once the fence's
      // has arrived, any (wrong) one of round 2 has too.
      const fence = `tpar_fence_${n}`;
      await stmts.ensureTask(driver, fence, false, false);
      await sql(`UPDATE ${T}.queues SET waiting = true WHERE queue_name = $1`, [fence]);
      await stmts.enqueue(driver, fence, '{}', headersOf(job), undefined, job.runAt);
      await eventually(() => heard.includes(fence));
      expect(heard.filter((h) => h === pair.ts)).toHaveLength(1);
      expect(heard.filter((h) => h === pair.fn)).toHaveLength(1);
      await expectSameTables(pair);
    } finally {
      await sub.close();
    }
  });

  it('fails the same way for a task whose queue does not exist', async () => {
    const job: Job = { input: {}, runAt: { at: null, delayMs: 0 } };
    const tsErr = await stmts
      .enqueue(driver, 'tpar_missing', '{}', headersOf(job), undefined, job.runAt)
      .then(
        () => null,
        (e: Error & { sqlState?: string }) => e,
      );
    const fnErr = await enqueueSql('tpar_missing', job).then(
      () => null,
      (e: Error & { sqlState?: string }) => e,
    );
    expect(tsErr?.sqlState).toBeDefined();
    expect(tsErr!.sqlState).toBe(fnErr!.sqlState);
    expect(tsErr!.message).toBe(fnErr!.message);
  });
});
