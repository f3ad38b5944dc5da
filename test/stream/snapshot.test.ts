// Snapshot correctness: concurrent producers whose transactions interleave
// and commit out of order (including one long transaction committing after
// many later ones), with ticks taken all along by another session. Every one
// of three consumers must see every committed event exactly once, and no
// rolled-back event.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { S, connections, drainAll, drainWindow, tick } from './helpers.js';

const db = useTestDatabase();

/** Small deterministic PRNG, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('snapshot-based batches', () => {
  it('no event skipped or seen twice across interleaved, out-of-order commits (3 consumers)', async () => {
    await db.sql(`select ${S}.create_queue('snap')`);
    for (const c of ['c1', 'c2', 'c3']) await db.sql(`select ${S}.subscribe('snap', $1)`, [c]);
    const producers = await connections(db, 5);
    const [ticker] = await connections(db, 1);
    const random = rng(42);
    const committed = new Set<number>();
    const rolledBack = new Set<number>();
    const seen: Record<string, number[]> = { c1: [], c2: [], c3: [] };

    // A long transaction opened first and committed last.
    const long = producers[4]!;
    await long.query('BEGIN');
    const longIds: number[] = [];
    for (let i = 0; i < 20; i++)
      longIds.push(Number((await long.query(`select ${S}.send('snap', 'long')`)).rows[0].send));

    let stopTicking = false;
    const ticking = (async () => {
      while (!stopTicking) {
        await ticker!.query(`select ${S}.force_next_tick('snap'), ${S}.ticker('snap')`);
        await new Promise((r) => setImmediate(r));
      }
    })();
    // Consumers read concurrently with the producers.
    let stopConsuming = false;
    const consuming = Promise.all(
      Object.keys(seen).map(async (c) => {
        while (!stopConsuming) {
          const { ids } = await drainWindow(db, 'snap', c);
          seen[c]!.push(...ids);
          if (ids.length === 0) await new Promise((r) => setTimeout(r, 2));
        }
      }),
    );

    // Four producers: transactions of 1–20 sends, held open for a random
    // number of steps so commits land in a different order than the sends.
    await Promise.all(
      producers.slice(0, 4).map(async (p) => {
        for (let txn = 0; txn < 60; txn++) {
          await p.query('BEGIN');
          const ids: number[] = [];
          const n = 1 + Math.floor(random() * 20);
          for (let i = 0; i < n; i++) {
            if (random() < 0.3) {
              const r = await p.query(
                `select ${S}.send_batch('snap', array['b1','b2','b3']::text[]) as ids`,
              );
              ids.push(...(r.rows[0].ids as string[]).map(Number));
            } else {
              ids.push(Number((await p.query(`select ${S}.send('snap', 'x')`)).rows[0].send));
            }
            if (random() < 0.2) await new Promise((r) => setTimeout(r, random() * 5));
          }
          if (random() < 0.1) {
            await p.query('ROLLBACK');
            ids.forEach((id) => rolledBack.add(id));
          } else {
            await p.query('COMMIT');
            ids.forEach((id) => committed.add(id));
          }
        }
      }),
    );
    await long.query('COMMIT');
    longIds.forEach((id) => committed.add(id));
    stopTicking = true;
    await ticking;
    stopConsuming = true;
    await consuming;
    await tick(db, 'snap');
    for (const c of Object.keys(seen)) seen[c]!.push(...(await drainAll(db, 'snap', c)));

    expect(committed.size).toBeGreaterThan(1500);
    for (const c of Object.keys(seen)) {
      const ids = seen[c]!;
      expect(new Set(ids).size, `${c} saw an event twice`).toBe(ids.length);
      expect(
        ids.filter((id) => rolledBack.has(id)),
        `${c} saw rolled-back events`,
      ).toEqual([]);
      expect(
        [...committed].filter((id) => !ids.includes(id)),
        `${c} missed events`,
      ).toEqual([]);
    }
    // The long transaction's events arrived in a later window than events sent after them.
    const order = seen.c1!;
    expect(order.indexOf(longIds[0]!)).toBeGreaterThan(order.findIndex((id) => id > longIds[19]!));
  });

  it('all events of one transaction land in the same window', async () => {
    await db.sql(`select ${S}.create_queue('atomic'), ${S}.subscribe('atomic', 'a')`);
    const [p, t] = await connections(db, 2);
    await p!.query('BEGIN');
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(Number((await p!.query(`select ${S}.send('atomic', 'x')`)).rows[0].send));
      await t!.query(`select ${S}.force_next_tick('atomic'), ${S}.ticker('atomic')`);
    }
    await p!.query('COMMIT');
    await tick(db, 'atomic');
    const windows: number[][] = [];
    for (;;) {
      const w = await drainAll(db, 'atomic', 'a');
      if (w.length === 0) break;
      windows.push(w);
    }
    expect(windows).toEqual([ids]);
  });
});
