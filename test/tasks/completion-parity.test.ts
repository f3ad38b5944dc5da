// The Worker completes plain batches with a prepared statement straight
// against the task's tables (src/tasks/completion-statements.ts:
// completePlain) instead of through the SQL function it copies,
// `<tasks>.complete` (sql/tasks/0005_review_fixes.sql). Here both run on twin
// tasks with the same jobs and the same (partly stale) batch: same count,
// same rows left, same rows archived, every column (the archive's own
// `archived_at` within a tolerance).
import { beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/driver/quote.js';
import type { Driver } from '../../src/driver/types.js';
import { completePlain } from '../../src/tasks/completion-statements.js';
import { TaskStatements } from '../../src/tasks/statements.js';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const Q = quoteIdent(db.queueSchema);
const TASKS = 'pgferry_tasks';
const T = quoteIdent(TASKS);

let driver: Driver;
let stmts: TaskStatements;
beforeAll(() => {
  driver = db.driver();
  stmts = new TaskStatements(db.queueSchema, TASKS);
});

type Row = Record<string, unknown>;
const sql = async <R = Row>(text: string, params: unknown[] = []): Promise<R[]> =>
  (await driver.query<R>(text, params)).rows;

const ms = (v: unknown): number | null =>
  v == null ? null : (v instanceof Date ? v : new Date(String(v))).getTime();
const norm = (r: Row): Row => {
  const out: Row = {};
  for (const [k, v] of Object.entries(r))
    out[k] =
      k === 'archived_at'
        ? undefined
        : v instanceof Date || k.endsWith('_at') || k === 'vt'
          ? ms(v)
          : typeof v === 'bigint' || (typeof v === 'string' && /^\d+$/.test(v))
            ? Number(v)
            : v;
  return out;
};

let n = 0;
/**
 * Twin tasks, each with the same seven jobs: six leased (jobs 1–3 twice, so
 * read_ct 2), one never leased. Each twin's clock columns are copied from the
 * first twin's, so rows compare exactly.
 */
async function twins(): Promise<{ ts: string; fn: string }> {
  n++;
  const pair = { ts: `cpar_ts_${n}`, fn: `cpar_fn_${n}` };
  for (const q of [pair.ts, pair.fn]) {
    await stmts.ensureTask(driver, q, false, false);
    await sql(
      `SELECT ${Q}.send_batch($1, ARRAY['{"i":1}','{"i":2}','{"i":3}','{"i":4}','{"i":5}','{"i":6}','{"i":7}']::jsonb[],
         ARRAY['{"h":1}','{"h":2}','{"h":3}','{"h":4}','{"h":5}','{"h":6}','{"h":7}']::jsonb[])`,
      [q],
    );
    await sql(
      `UPDATE ${Q}.${quoteIdent(`q_${q}`)} SET read_ct = CASE WHEN msg_id <= 3 THEN 2 WHEN msg_id <= 6 THEN 1 ELSE 0 END,
         last_read_at = CASE WHEN msg_id <= 6 THEN '2030-01-01T00:00:00Z'::timestamptz END,
         vt = '2030-01-01T00:05:00Z', enqueued_at = '2029-12-31T00:00:00Z'`,
    );
  }
  return pair;
}

const rows = (queue: string, prefix: 'q' | 'a'): Promise<Row[]> =>
  sql(`SELECT * FROM ${Q}.${quoteIdent(`${prefix}_${queue}`)} ORDER BY msg_id`);

async function expectSame(pair: { ts: string; fn: string }): Promise<void> {
  for (const prefix of ['q', 'a'] as const) {
    const [a, b] = [await rows(pair.ts, prefix), await rows(pair.fn, prefix)];
    expect(a.map(norm), `${prefix} rows`).toEqual(b.map(norm));
    for (const r of a) expect(ms(r.archived_at) ?? Date.now()).toBeGreaterThan(Date.now() - 60_000);
  }
}

describe('tasks: the prepared completion matches <tasks>.complete', () => {
  // Jobs 1–6 held; job 2 at a stale read count, job 7 never leased, 99 unknown.
  const ids = [1, 2, 3, 4, 6, 7, 99];
  const rcs = [2, 1, 2, 1, 1, 0, 1];

  for (const archive of [true, false])
    for (const asyncCommit of [false, true])
      it(`archive ${archive}, asyncCommit ${asyncCommit}`, async () => {
        const pair = await twins();
        const viaFn = await sql(
          `SELECT * FROM ${T}.complete($1::text, $2::bigint[], $3::integer[], $4::boolean, $5::boolean, false)`,
          [pair.fn, ids, rcs, archive, asyncCommit],
        );
        const viaTs = await completePlain(stmts, driver, pair.ts, ids, rcs, archive, asyncCommit);
        expect(viaTs).toBe(viaFn.length);
        expect(viaTs).toBe(5); // 1, 3, 4, 6 held at those counts; 7 at read count 0
        await expectSame(pair);
        // A second completion of the same batch finishes nothing, in both.
        const again = await sql(
          `SELECT * FROM ${T}.complete($1::text, $2::bigint[], $3::integer[], $4::boolean, $5::boolean, false)`,
          [pair.fn, ids, rcs, archive, asyncCommit],
        );
        expect(await completePlain(stmts, driver, pair.ts, ids, rcs, archive, asyncCommit)).toBe(
          again.length,
        );
        await expectSame(pair);
      });

  // One read count for the whole batch takes a statement without the join
  // (completion-statements.ts): held jobs, a stale one, one never leased, an
  // unknown id and a duplicate, at read count 1 and at read count 2.
  for (const [batch, rc, finished] of [
    [[4, 5, 6, 7, 99, 4, 2], 1, 3],
    [[1, 2, 3, 4, 3], 2, 3],
  ] as const)
    for (const archive of [true, false])
      it(`one read count (${rc}) for the whole batch, archive ${archive}`, async () => {
        const pair = await twins();
        const rcsOf = batch.map(() => rc);
        const viaFn = await sql(
          `SELECT * FROM ${T}.complete($1::text, $2::bigint[], $3::integer[], $4::boolean, false, false)`,
          [pair.fn, batch, rcsOf, archive],
        );
        const viaTs = await completePlain(stmts, driver, pair.ts, batch, rcsOf, archive, false);
        expect(viaTs).toBe(viaFn.length);
        expect(viaTs).toBe(finished);
        await expectSame(pair);
      });

  it('an empty batch finishes nothing', async () => {
    const pair = await twins();
    expect(await completePlain(stmts, driver, pair.ts, [], [], true, false)).toBe(0);
    await expectSame(pair);
  });

  it('a missing task fails as the function does', async () => {
    const fn = await sql(
      `SELECT * FROM ${T}.complete('cpar_none', '{1}', '{1}', true, false, false)`,
    ).catch((e: unknown) => e as Error & { code: string });
    const ts = await completePlain(stmts, driver, 'cpar_none', [1], [1], true, false).catch(
      (e: unknown) => e as Error & { code: string },
    );
    expect(fn).toBeInstanceOf(Error);
    expect(ts).toBeInstanceOf((fn as Error).constructor);
    expect((ts as { code: string }).code).toBe((fn as { code: string }).code);
  });
});
