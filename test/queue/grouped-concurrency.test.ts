// FIFO group reads through QueueClient (one prepared statement, see
// src/queue/engine/grouped.ts) racing each other and the SQL functions on
// separate connections: no message handed out twice within its visibility
// timeout, a group's messages strictly in order and never while an earlier
// one of the group is in flight elsewhere, and every message delivered.
import { describe, expect, it } from 'vitest';
import { QueueClient } from '../../src/queue/client.js';
import type { GroupedReadMode } from '../../src/queue/grouped.js';
import { connections } from '../support/connections.js';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const S = db.queueSchema;

interface Body {
  g: string;
  seq: number;
}

async function fill(q: string, groups: number, perGroup: number): Promise<void> {
  await db.sql(`SELECT ${S}.create($1)`, [q]);
  await db.sql(
    `SELECT ${S}.send_batch($1, array_agg(jsonb_build_object('g', 'g' || grp, 'seq', seq) ORDER BY seq, grp),
                                array_agg(jsonb_build_object('x-pgmq-group', 'g' || grp) ORDER BY seq, grp))
       FROM generate_series(0, $2 - 1) grp, generate_series(0, $3 - 1) seq`,
    [q, groups, perGroup],
  );
  await db.sql(`SELECT ${S}.create_fifo_index($1)`, [q]);
}

const MODES: [GroupedReadMode, string][] = [
  ['grouped', 'read_grouped'],
  ['roundRobin', 'read_grouped_rr'],
  ['head', 'read_grouped_head'],
];

describe('group reads through QueueClient under concurrent consumers', () => {
  for (const [mode, fn] of MODES) {
    it(`${mode}: 4 clients and 2 SQL callers, no double delivery, groups in order`, async () => {
      const q = `gcc_${mode.toLowerCase()}`;
      const groups = 12;
      const perGroup = 20;
      const total = groups * perGroup;
      await fill(q, groups, perGroup);
      const clients = Array.from({ length: 4 }, () =>
        db.track(new QueueClient({ connectionString: db.url, schema: S, maxConnections: 1 })),
      );
      const raw = await connections(db, 2);
      type Read = (qty: number) => Promise<{ id: number; body: Body }[]>;
      const readers: Read[] = [
        ...clients.map(
          (c): Read =>
            async (qty) =>
              (await c.readGroupedBy<Body>(q, mode, { qty, visibilityTimeoutMs: 60_000 })).map(
                (m) => ({ id: m.msgId, body: m.message }),
              ),
        ),
        ...raw.map(
          (c): Read =>
            async (qty) =>
              (
                await c.query<{ msg_id: string; message: Body }>(
                  `SELECT msg_id, message FROM ${S}.${fn}($1, 60, $2)`,
                  [q, qty],
                )
              ).rows.map((r) => ({ id: Number(r.msg_id), body: r.message })),
        ),
      ];
      const finish = [
        ...clients.map((c) => async (id: number) => void (await c.delete(q, id))),
        ...raw.map(
          (c) => async (id: number) =>
            void (await c.query(`SELECT ${S}.delete($1, $2::bigint)`, [q, id])),
        ),
      ];
      const seen = new Set<number>();
      const next = new Map<string, number>();
      const holders = new Map<string, { worker: number; n: number }>();
      const violations: string[] = [];
      let delivered = 0;
      await Promise.all(
        readers.map(async (read, worker) => {
          let idle = 0;
          let i = 0;
          while (delivered < total && idle < 300) {
            const got = await read([1, 3, 7][(worker + i++) % 3]!);
            if (got.length === 0) {
              idle++;
              continue;
            }
            idle = 0;
            // Synchronous: JS sees receipts in the order they happened.
            for (const { id, body } of got) {
              if (seen.has(id)) violations.push(`message ${id} delivered twice`);
              seen.add(id);
              const want = next.get(body.g) ?? 0;
              if (body.seq !== want)
                violations.push(`${body.g}: got #${body.seq}, expected #${want}`);
              next.set(body.g, body.seq + 1);
              const h = holders.get(body.g);
              if (h && h.worker !== worker)
                violations.push(
                  `${body.g}#${body.seq} to ${worker} while ${h.worker} holds ${body.g}`,
                );
              holders.set(body.g, { worker, n: (h && h.worker === worker ? h.n : 0) + 1 });
            }
            for (const { id, body } of got) {
              const h = holders.get(body.g)!;
              if (--h.n === 0) holders.delete(body.g);
              await finish[worker]!(id);
              delivered++;
            }
          }
        }),
      );
      expect(violations).toEqual([]);
      expect(delivered).toBe(total);
      expect([...next.values()]).toEqual(Array(groups).fill(perGroup));
    });
  }

  it('a reader holding a group in its transaction: a client read skips that group', async () => {
    const q = 'gcc_hold';
    await fill(q, 3, 4);
    const [a, b] = Array.from({ length: 2 }, () =>
      db.track(new QueueClient({ connectionString: db.url, schema: S, maxConnections: 1 })),
    );
    await a!.transaction(async (tx) => {
      const first = await a!.readGrouped<Body>(q, { qty: 4, tx });
      expect(first.map((m) => m.message.g)).toEqual(['g0', 'g0', 'g0', 'g0']);
      // Group g0 is locked by `a` until it commits: `b` gets g1 and g2, in order.
      const second = await b!.readGrouped<Body>(q, { qty: 6 });
      expect(second.map((m) => `${m.message.g}#${m.message.seq}`)).toEqual([
        'g1#0',
        'g1#1',
        'g1#2',
        'g1#3',
        'g2#0',
        'g2#1',
      ]);
    });
    // After `a` committed, every group has a message in flight: nothing comes out,
    // from the client or from the SQL function.
    expect(await b!.readGrouped<Body>(q, { qty: 6 })).toEqual([]);
    expect(await db.sql(`SELECT * FROM ${S}.read_grouped($1, 30, 6)`, [q])).toEqual([]);
  });
});
