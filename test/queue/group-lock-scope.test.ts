import { describe, expect, it } from 'vitest';
import { QueueClient } from '../../src/queue/client.js';
import { connections } from '../support/connections.js';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const S = db.queueSchema;

// A group read takes a transaction-level advisory lock per group it uses.
// Until queue migration 14 the key was hashtextextended(<group>, 0) alone, in
// the SQL functions and in QueueClient's prepared read: a reader of one
// queue that held group "g1" (for its read's transaction) made every other
// queue's readers skip their own group "g1", which nobody held. Group keys
// shared across queues (customer or tenant ids) are the common case. The key
// is now the group hashed with the queue table's oid as the seed
// (sql/queue/0014_group_lock_scope.sql, src/queue/engine/grouped.ts).
describe('group reads of different queues', () => {
  it.each(['read_grouped', 'read_grouped_rr', 'read_grouped_head'])(
    "%s: a reader of one queue holding group g1 does not hide another queue's g1",
    async (fn) => {
      const [a, b] = await connections(db, 2);
      const qa = `gls_a_${fn}`;
      const qb = `gls_b_${fn}`;
      for (const q of [qa, qb]) {
        await db.sql(`SELECT ${S}.create($1)`, [q]);
        await db.sql(`SELECT ${S}.create_fifo_index($1)`, [q]);
        await db.sql(`SELECT ${S}.send($1, '{"m":1}'::jsonb, '{"x-pgmq-group":"g1"}'::jsonb)`, [q]);
      }
      // A consumer of queue A reads group g1 and works inside its transaction.
      await a!.query('BEGIN');
      const got = await a!.query(`SELECT msg_id FROM ${S}.${fn}($1, 30, 1)`, [qa]);
      expect(got.rows).toHaveLength(1);
      // Queue B's group g1 is its own: visible, held by nobody.
      const other = await b!.query(`SELECT msg_id FROM ${S}.${fn}($1, 30, 1)`, [qb]);
      await a!.query('COMMIT');
      expect(other.rows).toHaveLength(1);
    },
  );

  it("QueueClient's group read (its own prepared statement) is hidden the same way", async () => {
    const [a] = await connections(db, 1);
    for (const q of ['gls_a_client', 'gls_b_client']) {
      await db.sql(`SELECT ${S}.create($1)`, [q]);
      await db.sql(`SELECT ${S}.create_fifo_index($1)`, [q]);
      await db.sql(`SELECT ${S}.send($1, '{"m":1}'::jsonb, '{"x-pgmq-group":"g1"}'::jsonb)`, [q]);
    }
    const client = db.track(new QueueClient({ connectionString: db.url, schema: S }));
    await a!.query('BEGIN');
    expect(
      (await a!.query(`SELECT msg_id FROM ${S}.read_grouped('gls_a_client', 30, 1)`)).rows,
    ).toHaveLength(1);
    const other = await client.readGroupedBy('gls_b_client', 'grouped', {
      qty: 1,
      visibilityTimeoutMs: 30_000,
    });
    await a!.query('COMMIT');
    expect(other).toHaveLength(1);
  });
});
