import { describe, expect, it } from 'vitest';
import { QueueClient } from '../../src/queue/client.js';
import { connections } from '../support/connections.js';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const S = db.queueSchema;

// A group read takes a transaction-level advisory lock per group it uses,
// keyed by hashtextextended(<group>, 0) alone (sql/queue/0007_fifo_speed.sql,
// _read_grouped; src/queue/engine/grouped.ts uses the same key): the queue is
// not part of the key. A reader of one queue that holds group "g1" (for its
// read's transaction) makes every other queue's readers skip their own group
// "g1", which nobody holds: they get nothing although the group's head is
// visible and free. Group keys shared across queues (customer or tenant ids)
// are the common case, and a consumer that reads and works inside one
// transaction holds the key for the whole of its work.
//
// Proposed fix (queue migration and src/queue/engine/grouped.ts together, so
// the SQL and the prepared read keep excluding each other): key the lock by
// queue and group, e.g. pg_try_advisory_xact_lock(<queue table oid>::int,
// hashtext(<group>)) or hashtextextended(<queue table> || chr(10) || <group>, 0).
describe('group reads of different queues', () => {
  it.fails.each(['read_grouped', 'read_grouped_rr', 'read_grouped_head'])(
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

  it.fails(
    "QueueClient's group read (its own prepared statement) is hidden the same way",
    async () => {
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
    },
  );
});
