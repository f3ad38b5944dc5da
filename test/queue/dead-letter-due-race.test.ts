import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { connections } from '../support/connections.js';

const db = useTestDatabase();
const S = () => db.queueSchema;

// `_dead_letter_due` tells reads when an exhausted message falls due; each
// read that handles entries deletes them (SKIP LOCKED) and appends one for
// the next exhausted message still in the queue, unless an entry at or
// before it exists. Two readers that each delete a different entry see the
// other's entry (deleted, not yet committed) and would both skip the
// append: a message that neither could move (a third session held it) was
// then left exhausted with no entry, never handed out and never moved.
describe('dead-letter due entries under concurrent readers', () => {
  it('keeps an entry for an exhausted message when two readers delete different entries at once', async () => {
    const client = db.queueClient();
    await client.createQueue('race_src');
    await client.createQueue('race_dlq');
    await client.setDeadLetterPolicy('race_src', {
      deadLetterQueue: 'race_dlq',
      maxReadCount: 1,
    });
    const ids = [await client.send('race_src', { n: 1 }), await client.send('race_src', { n: 2 })];
    // One read each exhausts both, visible again at once: two entries due now.
    expect(await client.read('race_src', { qty: 2, visibilityTimeoutSeconds: 0 })).toHaveLength(2);
    const [holder, other, a, d] = await connections(db, 4);
    const entries = async (): Promise<string[]> =>
      (
        await a!.query<{ ctid: string }>(
          `SELECT ctid::text FROM ${S()}._dead_letter_due WHERE queue_table = 'q_race_src'
             AND due_at <= clock_timestamp() ORDER BY ctid`,
        )
      ).rows.map((r) => r.ctid);
    const due = await entries();
    expect(due.length).toBeGreaterThanOrEqual(2);

    // A third session holds both exhausted messages (as a reader's locking
    // SELECT does), so neither reader below can move them.
    await holder!.query('BEGIN');
    await holder!.query(`SELECT msg_id FROM ${S()}.q_race_src WHERE msg_id = ANY($1) FOR UPDATE`, [
      ids,
    ]);
    // Reader A handles every entry but the last (held for a moment by `other`).
    await other!.query('BEGIN');
    await other!.query(`SELECT 1 FROM ${S()}._dead_letter_due WHERE ctid = $1::tid FOR UPDATE`, [
      due[due.length - 1],
    ]);
    await a!.query('BEGIN');
    await a!.query(`SELECT ${S()}._before_read('race_src')`);
    await other!.query('ROLLBACK');
    // Reader D, at the same time, handles the last one.
    await d!.query('BEGIN');
    await d!.query(`SELECT ${S()}._before_read('race_src')`);
    await a!.query('COMMIT');
    await d!.query('COMMIT');
    await holder!.query('ROLLBACK');

    // The exhausted messages are still due, so an entry says so, and the
    // next read moves them.
    const [left] = (
      await a!.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${S()}._dead_letter_due
          WHERE queue_table = 'q_race_src' AND due_at <= clock_timestamp()`,
      )
    ).rows;
    expect(left!.n).toBeGreaterThan(0);
    await client.read('race_src', { qty: 10, visibilityTimeoutSeconds: 30 });
    const moved = await a!.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${S()}.q_race_dlq`);
    expect(moved.rows[0]!.n).toBe(2);
  });
});
