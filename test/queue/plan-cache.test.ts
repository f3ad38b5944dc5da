// The prepared hot paths of QueueClient must settle on the generic plan:
// a prepared statement that Postgres re-plans on every call (a custom plan)
// costs the planning it was prepared to save. `LIMIT $n` was one such case
// (the generic plan's estimate is a tenth of the table, so the plan cache
// keeps choosing custom plans), which is why common batch sizes are
// constants in the statement text. One connection, so every statement is
// prepared once and pg_prepared_statements shows all of them. It builds its
// own PgDriver on db.url whatever driver the step tests (the prepared copies
// are the same SQL on every driver); PGlite's step leaves it out
// (test/support/pglite-exclusions.ts).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgDriver } from '../../src/driver/pg.js';
import { QueueClient } from '../../src/queue/client.js';
import { useTestDatabase } from '../support/db.js';
import { testPool } from '../support/connections.js';

const db = useTestDatabase();
let pool: pg.Pool;
let driver: PgDriver;
let client: QueueClient;

beforeAll(() => {
  pool = testPool({ connectionString: db.url, max: 1 });
  driver = new PgDriver({ pool });
  client = new QueueClient({ driver, schema: db.queueSchema });
});
afterAll(async () => {
  await client?.close();
  await driver?.close();
  await pool?.end();
});

interface Prepared {
  statement: string;
  generic_plans: string;
  custom_plans: string;
}

describe('plan cache of the hot paths', () => {
  it('read, delete, archive and processBatch at qty 100 reuse one generic plan', async () => {
    await client.createQueue('plans');
    for (let i = 0; i < 4; i++)
      await client.sendBatch(
        'plans',
        Array.from({ length: 1000 }, (_, j) => ({ i, j })),
      );
    for (let i = 0; i < 12; i++) {
      const got = await client.read('plans', { qty: 100, visibilityTimeoutMs: 30_000 });
      const ids = got.map((m) => m.msgId);
      if (i % 2) await client.delete('plans', ids);
      else await client.archive('plans', ids);
      await client.processBatch('plans', async () => undefined, { qty: 100 });
    }
    const rows = (
      await pool.query<Prepared>(
        `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements`,
      )
    ).rows;
    const hot = rows.filter(
      (r) => r.statement.includes('q_plans') && !r.statement.startsWith('INSERT'),
    );
    // read, delete, archive, readLocked, finishLocked (delete).
    expect(hot.length).toBeGreaterThanOrEqual(5);
    for (const r of hot) {
      // The plan cache tries 5 custom plans first, then keeps the generic one.
      expect(Number(r.custom_plans), r.statement).toBeLessThanOrEqual(5);
      expect(Number(r.generic_plans), r.statement).toBeGreaterThan(0);
    }
  });
});
