// bus_read (bus migration 0005): archives what the member handled, then reads
// as bus_subscribe_with_headers(..., 0) does, in one call.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { BusNotMemberError, IsolatedBackend } from '../../src/bus/index.js';

const db = useTestDatabase();

const join = async (ch: string): Promise<string> =>
  (await db.sql<{ q: string }>('SELECT public.bus_join($1) AS q', [ch]))[0]!.q;
const publish = async (ch: string, from: string, n: number): Promise<number> =>
  Number(
    (
      await db.sql<{ ids: string[] }>(`SELECT public.bus_publish($1, $2, $3::jsonb) AS ids`, [
        ch,
        from,
        JSON.stringify({ n }),
      ])
    )[0]!.ids[0],
  );
const read = (q: string | null, ch: string | null, archive: number[] | null, qty = 10) =>
  db.sql<{ msg_id: string; message: unknown; headers: unknown }>(
    `SELECT * FROM public.bus_read($1, $2, 30, $3, $4::bigint[])`,
    [q, ch, qty, archive],
  );
const count = async (q: string, prefix: 'q' | 'a'): Promise<number> =>
  Number(
    (await db.sql<{ n: string }>(`SELECT count(*) AS n FROM ${db.queueSchema}.${prefix}_${q}`))[0]!
      .n,
  );
const state = (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: { code?: string; sqlState?: string }) => e.sqlState ?? e.code,
  );

describe('bus_read', () => {
  it('archives the handled ids, then reads the rest; each once', async () => {
    const ch = 'bus-read-a';
    const me = await join(ch);
    const peer = await join(ch);
    const ids: number[] = [];
    for (let n = 1; n <= 3; n++) ids.push(await publish(ch, peer, n));
    const first = await read(me, ch, null, 2);
    expect(first.map((r) => r.message)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(first[0]!.headers).toBeNull();
    // Archives 1 and 2 (and ignores an unknown id), reads 3.
    const second = await read(me, ch, [ids[0]!, ids[1]!, 999999]);
    expect(second.map((r) => Number(r.msg_id))).toEqual([ids[2]]);
    expect(await count(me, 'a')).toBe(2);
    expect(await read(me, ch, [ids[2]!])).toEqual([]);
    expect(await count(me, 'a')).toBe(3);
    expect(await count(me, 'q')).toBe(0);
    expect(await read(me, ch, [])).toEqual([]);
  });

  it('refuses a queue of another channel or an unknown one (PF502) and archives nothing', async () => {
    const victim = await join('bus-read-secret');
    const sender = await join('bus-read-secret');
    const id = await publish('bus-read-secret', sender, 1);
    for (const [q, ch] of [
      [victim, 'bus-read-other'],
      [victim, null],
      [null, 'bus-read-secret'],
      ['bus_00000000000000000000000000000000', 'bus-read-secret'],
    ] as const) {
      expect(await state(read(q, ch, [id]))).toBe('PF502');
    }
    expect(await count(victim, 'a')).toBe(0);
    expect(
      await state(
        db.sql(`SELECT * FROM public.bus_read($1, $2, NULL, 1, NULL)`, [victim, 'bus-read-secret']),
      ),
    ).toBe('PF501');
    expect((await read(victim, 'bus-read-secret', null)).map((r) => Number(r.msg_id))).toEqual([
      id,
    ]);
  });
});

// bus_peek (bus migration 0007): a listening member's read. Archives what it
// handled, then returns the visible rest but the skipped ids, hiding nothing.
const peek = (
  q: string | null,
  ch: string | null,
  archive: number[] | null,
  skip: number[] | null,
  qty: number | null = 10,
) =>
  db.sql<{ msg_id: string; message: unknown; headers: unknown }>(
    `SELECT * FROM public.bus_peek($1, $2, $3, $4::bigint[], $5::bigint[])`,
    [q, ch, qty, archive, skip],
  );

describe('bus_peek', () => {
  it('returns the visible messages but the skipped ones, hides nothing, archives the handled ids', async () => {
    const ch = 'bus-peek-a';
    const me = await join(ch);
    const peer = await join(ch);
    const ids: number[] = [];
    for (let n = 1; n <= 3; n++) ids.push(await publish(ch, peer, n));
    const first = await peek(me, ch, null, null, 2);
    expect(first.map((r) => r.message)).toEqual([{ n: 1 }, { n: 2 }]);
    // Nothing hidden or counted: the same answer again.
    expect(await peek(me, ch, [], [], 2)).toEqual(first);
    expect(
      (
        await db.sql<{ read_ct: number }>(
          `SELECT read_ct FROM ${db.queueSchema}.q_${me} ORDER BY msg_id`,
        )
      ).map((r) => r.read_ct),
    ).toEqual([0, 0, 0]);
    expect((await peek(me, ch, null, [ids[0]!, ids[1]!])).map((r) => Number(r.msg_id))).toEqual([
      ids[2],
    ]);
    // Archives 1 and 2 (and ignores an unknown id), then reads 3.
    const rest = await peek(me, ch, [ids[0]!, ids[1]!, 999999], []);
    expect(rest.map((r) => Number(r.msg_id))).toEqual([ids[2]]);
    expect(await count(me, 'a')).toBe(2);
    expect(await peek(me, ch, [ids[2]!], [])).toEqual([]);
    expect(await count(me, 'a')).toBe(3);
    expect(await count(me, 'q')).toBe(0);
  });

  it('refuses a queue of another channel or an unknown one (PF502) and archives nothing', async () => {
    const victim = await join('bus-peek-secret');
    const sender = await join('bus-peek-secret');
    const id = await publish('bus-peek-secret', sender, 1);
    for (const [q, ch] of [
      [victim, 'bus-peek-other'],
      [victim, null],
      [null, 'bus-peek-secret'],
      ['bus_00000000000000000000000000000000', 'bus-peek-secret'],
    ] as const) {
      expect(await state(peek(q, ch, [id], null))).toBe('PF502');
    }
    expect(await count(victim, 'a')).toBe(0);
    for (const qty of [null, -1]) {
      expect(await state(peek(victim, 'bus-peek-secret', [id], null, qty))).toBe('PF501');
    }
    expect(await count(victim, 'a')).toBe(0);
    expect(
      (await peek(victim, 'bus-peek-secret', null, null)).map((r) => Number(r.msg_id)),
    ).toEqual([id]);
  });
});

describe('IsolatedBackend reads and archives of a member that left meanwhile', () => {
  it("is BusNotMemberError (PF502) when the member's function is gone between the check and the call", async () => {
    const backend = db.track(new IsolatedBackend({ connectionString: db.url }));
    const ch = 'bus-read-gone';
    const me = await backend.join(ch);
    // What a concurrent leave does between bus_read's membership check and
    // its dynamic call: the member row is still there, its function is not.
    await db.sql(
      `DROP FUNCTION public._pgferry_bus_read_${me.slice(4)}(integer, integer, bigint[])`,
    );
    const err = await backend
      .read(me, {
        channel: ch,
        visibilityTimeoutSeconds: 30,
        batchSize: 10,
        maxPollSeconds: 0,
        pollIntervalMs: 100,
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(BusNotMemberError);
    expect((err as { sqlState?: string }).sqlState).toBe('PF502');
  });

  it('archive: the same race is BusNotMemberError (PF502) too', async () => {
    const backend = db.track(new IsolatedBackend({ connectionString: db.url }));
    const ch = 'bus-archive-gone';
    const me = await backend.join(ch);
    await db.sql(`DROP FUNCTION public._pgferry_bus_archive_${me.slice(4)}(bigint[])`);
    const err = await backend.archive(me, ch, [1]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BusNotMemberError);
    expect((err as { sqlState?: string }).sqlState).toBe('PF502');
  });
});
