// The worker leases a plain FIFO task's jobs with a prepared statement
// (src/tasks/lease.ts, TaskStatements.fetchPlain) instead of the SQL functions
// it copies, `<tasks>.fetch_after` and (after id 0) `<tasks>.fetch`. Here both
// run on twin tasks with the same inputs: same jobs leased (ids, read counts,
// bodies, headers), same rows afterwards (every column, times within a
// tolerance), the same under the controls (a paused task leases nothing; a
// rate-limited one is left to the SQL function). Then several connections
// lease one queue at once: no job is leased twice.
import { beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/driver/quote.js';
import type { Driver } from '../../src/driver/types.js';
import { toMessage, type MessageRow } from '../../src/queue/index.js';
import type { JobMessage } from '../../src/tasks/lease.js';
import { TaskStatements } from '../../src/tasks/statements.js';
import { useTestDatabase } from '../support/db.js';
import { testClient } from '../support/connections.js';

const db = useTestDatabase();
const Q = quoteIdent(db.queueSchema);
const TASKS = 'pgferry_tasks';
const T = quoteIdent(TASKS);
const TOL_MS = 5000;
const LEASE_MS = 60_000;

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
async function twins(jobs: number, delayedEvery = 0): Promise<{ ts: string; fn: string }> {
  n++;
  const pair = { ts: `fpar_ts_${n}`, fn: `fpar_fn_${n}` };
  for (const q of [pair.ts, pair.fn]) {
    await stmts.ensureTask(driver, q, false, false);
    for (let i = 1; i <= jobs; i++) {
      const later = delayedEvery > 0 && i % delayedEvery === 0;
      await stmts.enqueue(
        driver,
        q,
        JSON.stringify({ i }),
        JSON.stringify({ 'x-pgferry-task': 'same', n: i }),
        undefined,
        { at: null, delayMs: later ? 3_600_000 : 0 },
      );
    }
  }
  return pair;
}

/** `<tasks>.fetch_after`, or with after id 0 `<tasks>.fetch` (what the prepared lease copies). */
async function fetchSql(
  queue: string,
  qty: number,
  after: number,
  lease = LEASE_MS,
): Promise<JobMessage[]> {
  const rows = await sql<MessageRow>(
    after === 0
      ? `SELECT * FROM ${T}.fetch($1::text, $2::integer, $3::integer)`
      : `SELECT * FROM ${T}.fetch_after($1::text, $2::integer, $3::integer, $4::bigint)`,
    after === 0 ? [queue, qty, lease] : [queue, qty, lease, after],
  );
  return rows.map((r) => toMessage<unknown>(r)); // what the worker does with the function's rows
}

/** Each leased job's enqueue time, exactly (to the millisecond), as the table holds it. */
async function expectEnqueueTimes(queue: string, ms: JobMessage[]): Promise<void> {
  const rows = await sql<{ msg_id: string; at: string }>(
    `SELECT msg_id::text, to_char(enqueued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
       FROM ${Q}.${quoteIdent(`q_${queue}`)} WHERE msg_id = ANY($1::bigint[])`,
    [ms.map((m) => m.msgId)],
  );
  const at = new Map(rows.map((r) => [Number(r.msg_id), r.at]));
  for (const m of ms) expect(m.enqueuedAt.toISOString(), `job ${m.msgId}`).toBe(at.get(m.msgId));
}

const view = (ms: JobMessage[]): unknown[] =>
  ms
    .map((m) => [m.msgId, m.readCount, m.message, m.headers, m.enqueuedAt instanceof Date])
    .sort((a, b) => (a[0] as number) - (b[0] as number));

const time = (v: unknown): number | null => (v == null ? null : new Date(String(v)).getTime());

async function expectSameTables(pair: { ts: string; fn: string }): Promise<void> {
  const table = (q: string): Promise<Row[]> =>
    sql(`SELECT * FROM ${Q}.${quoteIdent(`q_${q}`)} ORDER BY msg_id`);
  const [a, b] = [await table(pair.ts), await table(pair.fn)];
  expect(a.length).toBe(b.length);
  a.forEach((ra, i) => {
    const rb = b[i]!;
    for (const col of Object.keys(ra)) {
      if (['enqueued_at', 'last_read_at', 'vt'].includes(col)) {
        const [x, y] = [time(ra[col]), time(rb[col])];
        expect(x === null, `${col} null in row ${i}`).toBe(y === null);
        if (x !== null && y !== null) expect(Math.abs(x - y)).toBeLessThanOrEqual(TOL_MS);
      } else {
        expect(String(ra[col]), `${col} of row ${i}`).toEqual(String(rb[col]));
      }
    }
  });
}

describe('the prepared lease mirrors <tasks>.fetch_after and <tasks>.fetch', () => {
  it('whole queue, after an id, topped up from the head, delayed jobs skipped, empty', async () => {
    const pair = await twins(20, 7); // jobs 7 and 14 run in an hour
    const steps: [qty: number, after: number][] = [
      [3, 0], // the first three
      [4, 10], // 11, 12, 13, 15
      [6, 17], // 18, 19, 20, then 4, 5, 6 from the head
      [2, 0], // 8, 9
      [0, 0],
      [0, 5],
      [50, 3], // everything left: 10, 16, 17
      [5, 0], // nothing
      [5, 12], // nothing
    ];
    for (const [qty, after] of steps) {
      const ts = await stmts.fetchPlain(driver, pair.ts, qty, LEASE_MS, after);
      const fn = await fetchSql(pair.fn, qty, after);
      expect(ts, `fetch ${qty} after ${after}`).not.toBeNull();
      expect(view(ts!), `fetch ${qty} after ${after}`).toEqual(view(fn));
      await expectEnqueueTimes(pair.ts, ts!);
    }
    await expectSameTables(pair);
    const left = await sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${Q}.${quoteIdent(`q_${pair.ts}`)} WHERE read_ct = 0`,
    );
    expect(left[0]!.n).toBe(2);
  });

  it('an expired lease is leased again, its read count raised', async () => {
    const pair = await twins(3);
    // A zero lease: visible again at once.
    expect(await stmts.fetchPlain(driver, pair.ts, 2, 0, 0)).toHaveLength(2);
    expect(await fetchSql(pair.fn, 2, 0, 0)).toHaveLength(2);
    const ts = await stmts.fetchPlain(driver, pair.ts, 3, LEASE_MS, 2);
    const fn = await fetchSql(pair.fn, 3, 2);
    expect(view(ts!)).toEqual(view(fn));
    expect(view(ts!).map((r) => (r as number[])[1])).toEqual([2, 2, 1]);
    await expectSameTables(pair);
  });

  it('a paused task leases nothing; a rate-limited one is left to the SQL function', async () => {
    const pair = await twins(5);
    for (const q of [pair.ts, pair.fn]) await sql(`SELECT ${T}.pause($1)`, [q]);
    expect(await stmts.fetchPlain(driver, pair.ts, 5, LEASE_MS, 0)).toEqual([]);
    expect(await stmts.fetchPlain(driver, pair.ts, 5, LEASE_MS, 2)).toEqual([]);
    expect(await fetchSql(pair.fn, 5, 0)).toEqual([]);
    expect(await fetchSql(pair.fn, 5, 2)).toEqual([]);
    await expectSameTables(pair);
    for (const q of [pair.ts, pair.fn]) await sql(`SELECT ${T}.resume($1)`, [q]);
    for (const q of [pair.ts, pair.fn])
      await sql(`SELECT ${T}.configure_task($1, 1, 2, 60000, false)`, [q]);
    // Rate-limited: nothing leased, and null tells the worker to call fetch().
    expect(await stmts.fetchPlain(driver, pair.ts, 5, LEASE_MS, 0)).toBeNull();
    expect(await stmts.fetchPlain(driver, pair.ts, 5, LEASE_MS, 3)).toBeNull();
    const none = await sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${Q}.${quoteIdent(`q_${pair.ts}`)} WHERE read_ct > 0`,
    );
    expect(none[0]!.n).toBe(0);
    for (const q of [pair.ts, pair.fn]) await sql(`SELECT ${T}.configure_task($1)`, [q]);
    const ts = await stmts.fetchPlain(driver, pair.ts, 2, LEASE_MS, 0);
    expect(view(ts!)).toEqual(view(await fetchSql(pair.fn, 2, 0)));
    await expectSameTables(pair);
  });
  it('leases rows that moved since they were enqueued (updated: new row addresses)', async () => {
    const pair = await twins(6);
    // Rewrite some rows (same values): each gets a new address, as a
    // heartbeat, progress or an expired lease's re-lease would give it.
    for (const q of [pair.ts, pair.fn])
      await sql(`UPDATE ${Q}.${quoteIdent(`q_${q}`)} SET message = message WHERE msg_id % 2 = 0`);
    const ts = await stmts.fetchPlain(driver, pair.ts, 4, LEASE_MS, 0);
    expect(view(ts!)).toEqual(view(await fetchSql(pair.fn, 4, 0)));
    expect(ts).toHaveLength(4);
    await expectSameTables(pair);
  });
});

describe('the prepared lease under concurrency', () => {
  it('never leases a job twice among connections leasing at once', async () => {
    const queue = 'fpar_many';
    await stmts.ensureTask(driver, queue, false, false);
    const total = 3000;
    for (let i = 0; i < total; i += 500)
      await stmts.enqueueBatch(
        driver,
        queue,
        Array.from({ length: 500 }, (_, k) => JSON.stringify({ i: i + k })),
        Array.from({ length: 500 }, () => '{}'),
        Array.from({ length: 500 }, () => undefined),
        Array.from({ length: 500 }, () => ({ at: null, delayMs: 0 })),
      );
    const clients = Array.from({ length: 4 }, () => testClient({ connectionString: db.url }));
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const seen: number[] = [];
      let afters = 0;
      await Promise.all(
        clients.map(async (c, k) => {
          // Each connection its own statement cache, as each worker has.
          const own = new TaskStatements(db.queueSchema, TASKS);
          let after = 0;
          for (;;) {
            const got = await own.fetchPlain(c, queue, 7 + k * 13, LEASE_MS, after);
            if (got === null) throw new Error('not rate-limited');
            if (got.length === 0) break;
            for (const m of got) seen.push(m.msgId);
            after = Math.max(...got.map((m) => m.msgId)); // fetch_after's way, as a worker
            afters++;
          }
        }),
      );
      expect(afters).toBeGreaterThan(4);
      expect(seen).toHaveLength(total);
      expect(new Set(seen).size).toBe(total);
      const rows = await sql<{ n: number; one: number }>(
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE read_ct = 1)::int AS one
           FROM ${Q}.${quoteIdent(`q_${queue}`)}`,
      );
      expect(rows[0]).toEqual({ n: total, one: total });
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('never leases a job twice while another connection keeps rewriting the rows', async () => {
    // The lease locks each candidate, then updates the locked row by its
    // address (lease.ts). A candidate rewritten and committed meanwhile is
    // locked at its new version; a row this statement cannot update there is
    // left for a later fetch, never leased twice or lost.
    const queue = 'fpar_moving';
    await stmts.ensureTask(driver, queue, false, false);
    const total = 1500;
    await stmts.enqueueBatch(
      driver,
      queue,
      Array.from({ length: total }, (_, k) => JSON.stringify({ i: k })),
      Array.from({ length: total }, () => '{}'),
      Array.from({ length: total }, () => undefined),
      Array.from({ length: total }, () => ({ at: null, delayMs: 0 })),
    );
    const table = `${Q}.${quoteIdent(`q_${queue}`)}`;
    const [leaser, writer] = [db.url, db.url].map((u) => testClient({ connectionString: u }));
    await Promise.all([leaser!.connect(), writer!.connect()]);
    try {
      let done = false;
      let rewrites = 0;
      const churn = (async () => {
        while (!done) {
          // Rows not leased yet, rewritten in place (same values, new addresses).
          await writer!.query(
            `UPDATE ${table} SET message = message WHERE msg_id IN
               (SELECT msg_id FROM ${table} WHERE read_ct = 0 ORDER BY random() LIMIT 50
                FOR UPDATE SKIP LOCKED)`,
          );
          rewrites++;
        }
      })();
      const seen: number[] = [];
      const own = new TaskStatements(db.queueSchema, TASKS);
      const leaseAll = async (): Promise<void> => {
        for (;;) {
          const got = await own.fetchPlain(leaser!, queue, 25, LEASE_MS, 0);
          if (got === null) throw new Error('not rate-limited');
          if (got.length === 0) return;
          for (const m of got) seen.push(m.msgId);
        }
      };
      await leaseAll();
      done = true;
      await churn;
      await leaseAll(); // rows the writer held at the last look
      expect(rewrites).toBeGreaterThan(0);
      expect(seen).toHaveLength(total);
      expect(new Set(seen).size).toBe(total);
      const rows = await sql<{ n: number; one: number }>(
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE read_ct = 1)::int AS one FROM ${table}`,
      );
      expect(rows[0]).toEqual({ n: total, one: total });
    } finally {
      await Promise.all([leaser!.end(), writer!.end()]);
    }
  });
});
