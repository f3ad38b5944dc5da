import type { TestDb } from '../support/db.js';

/** Schema of the stream engine in the test template. */
export const S = 'pgque';

/** Opens `n` separate connections (closed after the file). */
export { connections } from '../support/connections.js';

/** force_next_tick + ticker(stream) in their own transaction: the next window is cut now. */
export async function tick(db: TestDb, stream: string): Promise<number> {
  const [r] = await db.sql<{ t: string }>(`SELECT ${S}.force_next_tick($1), ${S}.ticker($1) AS t`, [
    stream,
  ]);
  return Number(r!.t);
}

/** Receives and acks one window for `consumer`; returns the payloads (as text). */
export async function drainWindow(
  db: TestDb,
  stream: string,
  consumer: string,
): Promise<{ ids: number[]; batch: number | null }> {
  const rows = await db.sql<{ msg_id: string; batch_id: string }>(
    `SELECT * FROM ${S}.receive($1, $2, 100000)`,
    [stream, consumer],
  );
  if (rows.length === 0) return { ids: [], batch: null };
  await db.sql(`SELECT ${S}.ack($1)`, [rows[0]!.batch_id]);
  return { ids: rows.map((r) => Number(r.msg_id)), batch: Number(rows[0]!.batch_id) };
}

/** Everything a consumer can still receive, window by window, until no tick is left. */
export async function drainAll(db: TestDb, stream: string, consumer: string): Promise<number[]> {
  const out: number[] = [];
  for (;;) {
    const [p] = await db.sql<{ p: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ${S}.subscription s JOIN ${S}.queue q ON q.queue_id = s.sub_queue
                        JOIN ${S}.consumer c ON c.co_id = s.sub_consumer
                        JOIN ${S}.tick t ON t.tick_queue = s.sub_queue AND t.tick_id > s.sub_last_tick
                       WHERE q.queue_name = $1 AND c.co_name = $2) AS p`,
      [stream, consumer],
    );
    if (!p!.p) return out;
    out.push(...(await drainWindow(db, stream, consumer)).ids);
  }
}
