import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { connections } from '../support/connections.js';

const db = useTestDatabase();
const S = db.queueSchema;

interface Row {
  msg_id: string;
  message: { g: string; seq: number };
}

/** Sends `perGroup` messages to each of `groups` groups, interleaved (g0#0, g1#0, …, g0#1, …). */
async function fill(
  q: string,
  groups: number,
  perGroup: number,
  order: 'interleaved' | 'blocks' = 'interleaved',
): Promise<void> {
  await db.sql(`SELECT ${S}.create($1)`, [q]);
  const outer = order === 'interleaved' ? 'seq, grp' : 'grp, seq';
  await db.sql(
    `SELECT ${S}.send_batch($1, array_agg(jsonb_build_object('g', 'g' || grp, 'seq', seq) ORDER BY ${outer}),
                                array_agg(jsonb_build_object('x-pgmq-group', 'g' || grp) ORDER BY ${outer}))
       FROM generate_series(0, $2 - 1) grp, generate_series(0, $3 - 1) seq`,
    [q, groups, perGroup],
  );
}

describe('FIFO groups under concurrent consumers (separate connections)', () => {
  for (const fn of ['read_grouped', 'read_grouped_rr', 'read_grouped_head']) {
    it(`${fn}: within a group strictly in order, never while an earlier one is in flight; groups run in parallel`, async () => {
      const q = `conc_${fn.replace('read_grouped', 'g')}`;
      const groups = 6;
      const perGroup = 25;
      await fill(q, groups, perGroup);
      const conns = await connections(db, 4);
      const expected = new Map<string, number>();
      /** group -> the worker holding its messages (received, delete not yet issued), with how many. */
      const holders = new Map<string, { worker: number; n: number }>();
      const violations: string[] = [];
      let maxGroupsHeld = 0;
      let delivered = 0;

      await Promise.all(
        conns.map(async (c, worker) => {
          let idle = 0;
          while (delivered < groups * perGroup && idle < 200) {
            const res = await c.query<Row>(`SELECT msg_id, message FROM ${S}.${fn}($1, 60, 3)`, [
              q,
            ]);
            if (res.rows.length === 0) {
              idle++;
              continue;
            }
            idle = 0;
            // Everything below runs synchronously: JS sees the receipts in the order they happened.
            for (const r of res.rows) {
              const { g, seq } = r.message;
              const want = expected.get(g) ?? 0;
              if (seq !== want) violations.push(`${g}: got #${seq}, expected #${want}`);
              expected.set(g, seq + 1);
              const h = holders.get(g);
              if (h && h.worker !== worker)
                violations.push(`${g}#${seq} handed to ${worker} while ${h.worker} holds ${g}`);
              holders.set(g, { worker, n: (h && h.worker === worker ? h.n : 0) + 1 });
            }
            maxGroupsHeld = Math.max(maxGroupsHeld, holders.size);
            // "Process" in order: release the hold, then delete (conservative: a hand-out
            // after the release but before the delete commits would be missed, never invented).
            for (const r of res.rows) {
              const h = holders.get(r.message.g)!;
              if (--h.n === 0) holders.delete(r.message.g);
              await c.query(`SELECT ${S}.delete($1, $2::bigint)`, [q, r.msg_id]);
              delivered++;
            }
          }
        }),
      );
      expect(violations).toEqual([]);
      expect(delivered).toBe(groups * perGroup);
      expect([...expected.values()]).toEqual(Array(groups).fill(perGroup));
      // Different groups were held by different consumers at the same time.
      expect(maxGroupsHeld).toBeGreaterThan(1);
    });
  }

  it('a reader mid-transaction on group A does not block another reader: it gets group B at once', async () => {
    await db.sql(`SELECT ${S}.create('par')`);
    for (const g of ['A', 'A', 'B', 'B']) {
      await db.sql(
        `SELECT ${S}.send('par', '{}'::jsonb, jsonb_build_object('x-pgmq-group', $1::text))`,
        [g],
      );
    }
    const [c1, c2] = await connections(db, 2);
    await c1!.query('BEGIN');
    const r1 = await c1!.query<{ msg_id: string }>(
      `SELECT msg_id FROM ${S}.read_grouped('par', 60, 1)`,
    );
    expect(r1.rows.map((r) => Number(r.msg_id))).toEqual([1]);
    // c1 has not committed: c2 must neither wait nor take A's message 2.
    const r2 = await c2!.query<{ msg_id: string }>(
      `SELECT msg_id FROM ${S}.read_grouped('par', 60, 10)`,
    );
    expect(r2.rows.map((r) => Number(r.msg_id)).sort()).toEqual([3, 4]);
    await c1!.query('COMMIT');
    // After the commit A is blocked by its in-flight head.
    expect((await c2!.query(`SELECT msg_id FROM ${S}.read_grouped('par', 60, 10)`)).rows).toEqual(
      [],
    );
  });

  it('read_grouped_rr is fair: every batch takes one message from each group with work', async () => {
    // Groups sent in blocks (all of g0 first): plain read_grouped would drain g0 first.
    await fill('fair', 3, 20, 'blocks');
    const [c] = await connections(db, 1);
    const counts = new Map<string, number>();
    for (let i = 0; i < 10; i++) {
      const res = await c!.query<Row>(
        `SELECT msg_id, message FROM ${S}.read_grouped_rr('fair', 60, 3)`,
      );
      expect(res.rows.map((r) => r.message.g)).toEqual(['g0', 'g1', 'g2']);
      for (const r of res.rows) counts.set(r.message.g, (counts.get(r.message.g) ?? 0) + 1);
      await c!.query(`SELECT ${S}.delete('fair', $1::bigint[])`, [res.rows.map((r) => r.msg_id)]);
    }
    expect([...counts.values()]).toEqual([10, 10, 10]);
    // Against it: read_grouped fills from the oldest group.
    const res = await c!.query<Row>(`SELECT msg_id, message FROM ${S}.read_grouped('fair', 60, 3)`);
    expect(res.rows.map((r) => r.message.g)).toEqual(['g0', 'g0', 'g0']);
  });

  it('read_grouped_rr: concurrent fair readers share the groups, each group to one reader at a time', async () => {
    await fill('fair2', 8, 10, 'blocks');
    const conns = await connections(db, 4);
    const perReader = await Promise.all(
      conns.map(async (c) => {
        const res = await c.query<Row>(
          `SELECT msg_id, message FROM ${S}.read_grouped_rr('fair2', 60, 4)`,
        );
        return res.rows.map((r) => r.message.g);
      }),
    );
    // No group went to two readers (a reader that could lock few groups takes
    // their second messages: rr's next round).
    const readersOf = new Map<string, Set<number>>();
    perReader.forEach((gs, reader) =>
      gs.forEach((g) => readersOf.set(g, (readersOf.get(g) ?? new Set()).add(reader))),
    );
    expect([...readersOf.values()].every((r) => r.size === 1)).toBe(true);
    expect(perReader.flat().length).toBeGreaterThan(0);
    // Within each reader's batch the order is round robin: a group repeats only after every group it got.
    for (const gs of perReader) {
      const distinct = new Set(gs).size;
      gs.forEach((g, i) => expect(g).toBe(gs[i % distinct]));
    }
  });

  it('read_grouped_head: concurrent readers get at most one message per group in total', async () => {
    await fill('heads', 20, 5);
    const conns = await connections(db, 4);
    const results = await Promise.all(
      conns.map(async (c) => {
        const res = await c.query<Row>(
          `SELECT msg_id, message FROM ${S}.read_grouped_head('heads', 60, 10)`,
        );
        return res.rows.map((r) => r.message);
      }),
    );
    // A reader whose candidate heads were all locked by another at that
    // moment skips them (SKIP LOCKED) and may return fewer, so the 20 heads
    // are not promised to this round; a later read takes what is left. Across
    // both, every group's head exactly once, and never a message behind it.
    const round = results.flat();
    expect(round.length).toBeGreaterThan(0);
    const rest = await db.sql<Row>(
      `SELECT msg_id, message FROM ${S}.read_grouped_head('heads', 60, 20)`,
    );
    const all = [...round, ...rest.map((r) => r.message)];
    expect(new Set(all.map((m) => m.g)).size).toBe(all.length);
    expect(all.every((m) => m.seq === 0)).toBe(true);
    expect(all.length).toBe(20);
  });
});
