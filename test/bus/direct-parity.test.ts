// DirectBackend's hot path (src/bus/direct-sql.ts) runs prepared statements
// against the member queues' tables instead of the queue engine's SQL
// functions send, read and archive (sql/queue/0001_core.sql). Each test runs
// the statement on one queue and the function on a twin queue with the same
// setup and inputs, then compares what both returned, every column of every
// row both left behind (times within a tolerance), and the notifications.
import { beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/driver/quote.js';
import type { Driver } from '../../src/driver/types.js';
import { QueueClient } from '../../src/queue/client.js';
import { DirectStatements } from '../../src/bus/direct-sql.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { expectSameRows } from '../support/parity.js';

const db = useTestDatabase();
const S = quoteIdent(db.queueSchema);

let driver: Driver;
let client: QueueClient;
let stmts: DirectStatements;

beforeAll(() => {
  driver = db.driver();
  client = db.track(new QueueClient({ driver, schema: db.queueSchema }));
  stmts = new DirectStatements(client.engine);
});

type Row = Record<string, unknown>;
const sql = async <R = Row>(text: string, params: unknown[] = []): Promise<R[]> =>
  (await driver.query<R>(text, params)).rows;

let n = 0;
async function twins(): Promise<{ ts: string; fn: string }> {
  n++;
  const pair = { ts: `bpar_ts_${n}`, fn: `bpar_fn_${n}` };
  for (const q of [pair.ts, pair.fn]) await client.createQueue(q);
  return pair;
}

const table = (queue: string, prefix: 'q' | 'a' = 'q'): Promise<Row[]> =>
  sql(`SELECT * FROM ${S}.${quoteIdent(`${prefix}_${queue}`)} ORDER BY msg_id`);

async function expectSameTables(pair: { ts: string; fn: string }): Promise<void> {
  expectSameRows(await table(pair.ts), await table(pair.fn));
  expectSameRows(await table(pair.ts, 'a'), await table(pair.fn, 'a'));
}

describe('DirectBackend statements, parity with the queue engine functions', () => {
  it('publish = send(queue, message[, headers]) per peer, plus one NOTIFY per wake channel', async () => {
    const a = await twins();
    const b = await twins();
    const heard: string[] = [];
    const subs = await Promise.all(
      ['bpar_w_a', 'bpar_w_b'].map((ch) => driver.listen(ch, () => heard.push(ch))),
    );
    try {
      for (const headers of [null, JSON.stringify({ traceparent: 'x' })]) {
        const body = JSON.stringify({ hello: 'world', n: [1, 2] });
        const ids = await stmts.publish(
          driver,
          [a.ts, b.ts],
          ['bpar_w_a', 'bpar_w_b'],
          body,
          headers,
          false,
        );
        const fnIds: number[] = [];
        for (const q of [a.fn, b.fn]) {
          const r = await sql<{ id: string }>(
            headers === null
              ? `SELECT s AS id FROM ${S}.send($1::text, $2::jsonb) s`
              : `SELECT s AS id FROM ${S}.send($1::text, $2::jsonb, $3::jsonb) s`,
            headers === null ? [q, body] : [q, body, headers],
          );
          fnIds.push(Number(r[0]!.id));
        }
        expect(ids).toEqual(fnIds);
      }
      // The asynchronous-commit form writes the same.
      const body = JSON.stringify({ async: true });
      expect(await stmts.publish(driver, [a.ts], ['bpar_w_a'], body, null, true)).toEqual([3]);
      await sql(`SELECT ${S}.send($1::text, $2::jsonb)`, [a.fn, body]);
      await expectSameTables(a);
      await expectSameTables(b);
      await eventually(() => heard.length >= 5);
      expect(heard.filter((h) => h === 'bpar_w_a')).toHaveLength(3);
      expect(heard.filter((h) => h === 'bpar_w_b')).toHaveLength(2);
    } finally {
      for (const s of subs) await s.close();
    }
  });

  it('publish to a dropped peer fails as send does (QueueNotFoundError) and sends nothing', async () => {
    const a = await twins();
    const gone = await twins();
    await stmts.publish(driver, [a.ts, gone.ts], ['w1', 'w2'], '{}', null, false);
    await client.dropQueue(gone.ts);
    // The table name is still cached: the statement itself meets the missing table.
    await expect(
      stmts.publish(driver, [a.ts, gone.ts], ['w1', 'w2'], '{}', null, false),
    ).rejects.toMatchObject({ name: 'QueueNotFoundError' });
    await expect(sql(`SELECT ${S}.send($1::text, '{}'::jsonb)`, [gone.ts])).rejects.toMatchObject({
      name: 'QueueNotFoundError',
    });
    expect(await table(a.ts)).toHaveLength(1);
  });

  it('read = read(queue, vt seconds, qty): visible messages in msg_id order, hidden, counted', async () => {
    const pair = await twins();
    for (const q of [pair.ts, pair.fn]) {
      for (let i = 1; i <= 5; i++) await client.send(q, { i }, { headers: { h: i } });
      await client.send(q, { later: true }, { delayMs: 3_600_000 });
    }
    // Message 2 is taken (hidden) already on both.
    for (const q of [pair.ts, pair.fn]) await client.setVisibilityTimeout(q, 2, 600);
    for (const [vt, qty] of [
      [30, 2],
      [0, 10],
      [45, 10],
      [30, 0],
    ] as const) {
      const got = await stmts.read(driver, pair.ts, vt, qty);
      const want = await sql<{ msg_id: string; message: unknown; headers: unknown }>(
        `SELECT msg_id, message, headers FROM ${S}.read($1::text, $2::integer, $3::integer) ORDER BY msg_id`,
        [pair.fn, vt, qty],
      );
      expect(got).toEqual(
        want.map((r) => ({ msgId: Number(r.msg_id), message: r.message, headers: r.headers })),
      );
      await expectSameTables(pair);
    }
  });

  it('read with handled ids = archive(queue, ids) then read(...), in one statement', async () => {
    const pair = await twins();
    for (const q of [pair.ts, pair.fn]) {
      for (let i = 1; i <= 6; i++) await client.send(q, { i });
    }
    for (const [archive, qty] of [
      [[], 2],
      [[1, 2], 2],
      [[3, 99], 10],
      [[5, 6], 10],
    ] as const) {
      const got = await stmts.read(driver, pair.ts, 30, qty, archive);
      await sql(`SELECT ${S}.archive($1::text, $2::bigint[])`, [pair.fn, archive]);
      const want = await sql<{ msg_id: string; message: unknown; headers: unknown }>(
        `SELECT msg_id, message, headers FROM ${S}.read($1::text, 30, $2::integer) ORDER BY msg_id`,
        [pair.fn, qty],
      );
      expect(got).toEqual(
        want.map((r) => ({ msgId: Number(r.msg_id), message: r.message, headers: r.headers })),
      );
      await expectSameTables(pair);
    }
    // An archived id whose visibility ran out is archived, not read again.
    await client.send(pair.ts, { i: 7 });
    const [seven] = await stmts.read(driver, pair.ts, 0, 1);
    expect(await stmts.read(driver, pair.ts, 30, 10, [seven!.msgId])).toEqual([]);
    expect((await table(pair.ts, 'a')).map((r) => Number(r.msg_id))).toContain(seven!.msgId);
  });

  it('peek with handled ids = archive(queue, ids); then the visible rest but the skipped, nothing hidden or counted', async () => {
    const pair = await twins();
    for (const q of [pair.ts, pair.fn]) {
      for (let i = 1; i <= 6; i++) await client.send(q, { i }, { headers: { h: i } });
      await client.send(q, { later: true }, { delayMs: 3_600_000 });
    }
    // Message 6 is hidden by someone's read on both (a peek leaves it out too).
    for (const q of [pair.ts, pair.fn]) await client.setVisibilityTimeout(q, 6, 600);
    for (const [archive, skip, qty, want] of [
      [[], [], 2, [1, 2]],
      [[], [1, 2], 10, [3, 4, 5]],
      [[1, 2], [3], 10, [4, 5]],
      [[3, 99], [], 1, [4]],
      [[4, 5], [], 10, []],
    ] as const) {
      const got = await stmts.peek(driver, pair.ts, qty, archive, skip);
      if (archive.length > 0) {
        await sql(`SELECT ${S}.archive($1::text, $2::bigint[])`, [pair.fn, archive]);
      }
      expect(got.map((m) => m.msgId)).toEqual(want);
      expect(got.map((m) => m.message)).toEqual(want.map((i) => ({ i })));
      expect(got.map((m) => m.headers)).toEqual(want.map((i) => ({ h: i })));
      // The archive is the function's; the read changed no row (no vt, no read_ct).
      await expectSameTables(pair);
    }
  });

  it('a peek sees a message committed after a later one was read (ids are skipped, never a cursor)', async () => {
    const q = (await twins()).ts;
    const other = db.driver();
    let first!: () => void;
    const held = new Promise<void>((r) => (first = r));
    let release!: () => void;
    const go = new Promise<void>((r) => (release = r));
    // A publish in a transaction that takes its msg_id, then commits later.
    const tx = other.transaction(async (t) => {
      await t.query(`SELECT ${S}.send($1::text, '{"i": 1}'::jsonb)`, [q]);
      first();
      await go;
    });
    await held;
    await client.send(q, { i: 2 });
    const [two] = await stmts.peek(driver, q, 10, [], []);
    expect(two!.message).toEqual({ i: 2 });
    release();
    await tx;
    const got = await stmts.peek(driver, q, 10, [], [two!.msgId]);
    expect(got.map((m) => m.message)).toEqual([{ i: 1 }]);
    expect(got[0]!.msgId).toBeLessThan(two!.msgId);
  });

  it('archive = archive(queue, msg_ids[]): moved rows, ids that existed', async () => {
    const pair = await twins();
    for (const q of [pair.ts, pair.fn]) {
      for (let i = 1; i <= 4; i++) await client.send(q, { i });
      await client.read(q, { qty: 2, visibilityTimeoutMs: 30_000 });
    }
    for (const ids of [[1, 3, 99], [3], [2, 4, 4]]) {
      const got = await stmts.archive(driver, pair.ts, ids);
      const want = await sql<{ id: string }>(
        `SELECT a AS id FROM ${S}.archive($1::text, $2::bigint[]) a`,
        [pair.fn, ids],
      );
      expect(got.sort()).toEqual(want.map((r) => Number(r.id)).sort());
      await expectSameTables(pair);
    }
  });
});
