// Bus migration 0006 gives every member queue three generated functions with
// static SQL (_pgferry_bus_send_/read_/archive_<32 hex>, sql/bus/0006), which
// the isolated bus's definer functions call instead of the queue engine's
// send, read and archive. Each test runs the generated function on a member's
// queue and the queue engine function on a twin queue with the same setup
// and inputs, then compares what both returned and every column of every row
// both left behind (times within a tolerance). Migration 0007 adds a fourth,
// _pgferry_bus_peek_<32 hex> (a listening member's read), compared the same
// way with the direct backend's peek statement (src/bus/direct-sql.ts, itself
// compared with archive() in test/bus/direct-parity.test.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/driver/quote.js';
import { QueueClient } from '../../src/queue/client.js';
import { DirectStatements } from '../../src/bus/direct-sql.js';
import { useTestDatabase } from '../support/db.js';
import { expectSameRows } from '../support/parity.js';

const db = useTestDatabase();
const S = quoteIdent(db.queueSchema);

let client: QueueClient;
beforeAll(() => {
  client = db.track(new QueueClient({ connectionString: db.url, schema: db.queueSchema }));
});

type Row = Record<string, unknown>;
let n = 0;

/** A bus member's queue (`gen`, with its generated functions) and a plain twin queue (`fn`). */
async function twins(): Promise<{ gen: string; fn: string; id: string }> {
  n++;
  const gen = (await db.sql<{ q: string }>(`SELECT public.bus_join($1) AS q`, [`mpar-${n}`]))[0]!.q;
  const fn = `mpar_fn_${n}`;
  await client.createQueue(fn);
  return { gen, fn, id: gen.slice(4) };
}

const table = (queue: string, prefix: 'q' | 'a' = 'q'): Promise<Row[]> =>
  db.sql(`SELECT * FROM ${S}.${quoteIdent(`${prefix}_${queue}`)} ORDER BY msg_id`);

async function expectSameTables(pair: { gen: string; fn: string }): Promise<void> {
  expectSameRows(await table(pair.gen), await table(pair.fn));
  expectSameRows(await table(pair.gen, 'a'), await table(pair.fn, 'a'));
}

interface Msg {
  msg_id: string;
  message: unknown;
  headers: unknown;
}

describe('generated member functions, parity with the queue engine functions', () => {
  it('send_<id>(message, headers) = send(queue, message, headers)', async () => {
    const pair = await twins();
    for (const headers of [null, JSON.stringify({ traceparent: 'x' })]) {
      const body = JSON.stringify({ hello: 'world', n: [1, 2] });
      const [got] = await db.sql<{ id: string }>(
        `SELECT public._pgferry_bus_send_${pair.id}($1::jsonb, $2::jsonb) AS id`,
        [body, headers],
      );
      const [want] = await db.sql<{ id: string }>(
        `SELECT s AS id FROM ${S}.send($1::text, $2::jsonb, $3::jsonb) s`,
        [pair.fn, body, headers],
      );
      expect(got!.id).toBe(want!.id);
    }
    await expectSameTables(pair);
  });

  it('read_<id>(vt, qty, archive) = archive(queue, archive) then read(queue, vt, qty)', async () => {
    const pair = await twins();
    for (const q of [pair.gen, pair.fn]) {
      for (let i = 1; i <= 6; i++) await client.send(q, { i }, { headers: { h: i } });
      await client.send(q, { later: true }, { delayMs: 3_600_000 });
      // Message 2 is taken (hidden) already on both.
      await client.setVisibilityTimeout(q, 2, 600);
    }
    for (const [vt, qty, archive] of [
      [30, 2, null],
      [0, 10, []],
      [45, 10, [1, 3, 99]],
      [30, 0, [4]],
      [30, 10, [5, 6]],
    ] as const) {
      const got = await db.sql<Msg>(
        `SELECT * FROM public._pgferry_bus_read_${pair.id}($1::integer, $2::integer, $3::bigint[])`,
        [vt, qty, archive],
      );
      if (archive && archive.length > 0) {
        await db.sql(`SELECT ${S}.archive($1::text, $2::bigint[])`, [pair.fn, archive]);
      }
      const want = await db.sql<Msg>(
        `SELECT msg_id, message, headers FROM ${S}.read($1::text, $2::integer, $3::integer) ORDER BY msg_id`,
        [pair.fn, vt, qty],
      );
      expect(got).toEqual(want);
      await expectSameTables(pair);
    }
  });

  it('read_<id> applies a dead-letter policy as read does (_before_read)', async () => {
    const pair = await twins();
    const dlq = `mpar_dlq_${n}`;
    await client.createQueue(dlq);
    for (const q of [pair.gen, pair.fn]) {
      await db.sql(`SELECT ${S}.set_dead_letter_policy($1, $2, 1)`, [q, dlq]);
      await client.send(q, { i: 1 });
    }
    // Read once (read_ct 1, at the limit), visible again at once; the next read moves it.
    for (const vt of [0, 30]) {
      const got = await db.sql<Msg>(
        `SELECT * FROM public._pgferry_bus_read_${pair.id}($1::integer, 10, NULL)`,
        [vt],
      );
      const want = await db.sql<Msg>(
        `SELECT msg_id, message, headers FROM ${S}.read($1::text, $2::integer, 10) ORDER BY msg_id`,
        [pair.fn, vt],
      );
      expect(got).toEqual(want);
      await expectSameTables(pair);
    }
    expect(await table(pair.gen)).toEqual([]);
    expect(await table(dlq)).toHaveLength(2);
  });

  it('archive_<id>(ids) = archive(queue, ids): the ids that were there', async () => {
    const pair = await twins();
    for (const q of [pair.gen, pair.fn]) {
      for (let i = 1; i <= 4; i++) await client.send(q, { i });
      await client.read(q, { qty: 2, visibilityTimeoutMs: 30_000 });
    }
    for (const ids of [[1, 3, 99], [3], [2, 4, 4], []]) {
      const got = await db.sql<{ id: string }>(
        `SELECT a AS id FROM public._pgferry_bus_archive_${pair.id}($1::bigint[]) a`,
        [ids],
      );
      const want = await db.sql<{ id: string }>(
        `SELECT a AS id FROM ${S}.archive($1::text, $2::bigint[]) a`,
        [pair.fn, ids],
      );
      expect(got.map((r) => r.id).sort()).toEqual(want.map((r) => r.id).sort());
      await expectSameTables(pair);
    }
  });

  it("peek_<id>(qty, archive, skip) = the direct backend's peek: archive(queue, ids), then the visible rest but the skipped, nothing hidden or counted", async () => {
    const pair = await twins();
    const driver = db.driver();
    const stmts = new DirectStatements(client.engine);
    for (const q of [pair.gen, pair.fn]) {
      for (let i = 1; i <= 6; i++) await client.send(q, { i }, { headers: { h: i } });
      await client.send(q, { later: true }, { delayMs: 3_600_000 });
      // Message 6 is hidden by a read on both (a peek leaves it out too).
      await client.setVisibilityTimeout(q, 6, 600);
    }
    for (const [archive, skip, qty, want] of [
      [[], [], 2, [1, 2]],
      [null, null, 2, [1, 2]],
      [[], [1, 2], 10, [3, 4, 5]],
      [[1, 2], [3], 10, [4, 5]],
      [[3, 99], [], 1, [4]],
      [[4, 5], [], 10, []],
      [[], [], 0, []],
    ] as const) {
      const got = await db.sql<Msg>(
        `SELECT * FROM public._pgferry_bus_peek_${pair.id}($1::integer, $2::bigint[], $3::bigint[])`,
        [qty, archive, skip],
      );
      const twin = await stmts.peek(driver, pair.fn, qty, archive ?? [], skip ?? []);
      expect(got.map((m) => Number(m.msg_id))).toEqual(want);
      expect(
        got.map((m) => ({ msgId: Number(m.msg_id), message: m.message, headers: m.headers })),
      ).toEqual(twin);
      await expectSameTables(pair);
    }
  });

  it('a queue dropped by hand fails as the queue engine does (QueueNotFoundError)', async () => {
    const pair = await twins();
    await db.sql(`SELECT public._pgferry_bus_read_${pair.id}(30, 10, NULL)`);
    await client.dropQueue(pair.gen);
    await expect(
      db.driver().query(`SELECT * FROM public._pgferry_bus_read_${pair.id}(30, 10, NULL)`),
    ).rejects.toMatchObject({ name: 'QueueNotFoundError' });
  });

  it('bus_leave and the reaper drop the member functions with the queue', async () => {
    const fns = async (id: string): Promise<number> =>
      Number(
        (
          await db.sql<{ n: string }>(
            `SELECT count(*) AS n FROM pg_proc WHERE proname LIKE '\\_pgferry\\_bus\\_%\\_' || $1`,
            [id],
          )
        )[0]!.n,
      );
    const left = await twins();
    expect(await fns(left.id)).toBe(4);
    await db.sql(`SELECT public.bus_leave($1, $2)`, [left.gen, `mpar-${n}`]);
    expect(await fns(left.id)).toBe(0);
    const reaped = await twins();
    await db.sql(
      `UPDATE public._pgferry_bus_member SET lease_until = now() - interval '1 second' WHERE queue_name = $1`,
      [reaped.gen],
    );
    await db.sql(`SELECT public._pgferry_bus_reap(1000)`);
    expect(await fns(reaped.id)).toBe(0);
  });
});
