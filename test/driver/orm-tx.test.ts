/**
 * Transactional send with the caller's own ORM transaction: the business
 * write and the message commit together, or neither happens. Kysely and
 * Drizzle are real (over node-postgres and postgres.js); the Prisma case uses
 * an object with Prisma's `$queryRawUnsafe` signature over a pg client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import postgres from 'postgres';
import { Kysely, PostgresDialect, sql as ksql, type Generated } from 'kysely';
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePostgresJs } from 'drizzle-orm/postgres-js';
import { QueueClient } from '../../src/queue/client.js';
import type { Executor } from '../../src/driver/types.js';
import { drizzleExecutor, kyselyExecutor, prismaExecutor } from '../../src/driver/adapters.js';
import { useTestDatabase } from '../support/db.js';
import { testPool } from '../support/connections.js';

const db = useTestDatabase();

interface Tables {
  orders: { id: Generated<number>; item: string };
}

let pool: pg.Pool;
let pgjs: postgres.Sql;
let client: QueueClient;
let kysely: Kysely<Tables>;

beforeAll(async () => {
  pool = testPool({ connectionString: db.url, max: 4 });
  pgjs = postgres(db.url, { max: 2, onnotice: () => undefined });
  // Always the server database (db.url), whatever PGFERRY_TEST_DRIVER says:
  // the ORMs below connect there.
  client = new QueueClient({ connectionString: db.url, schema: db.queueSchema });
  kysely = new Kysely<Tables>({
    dialect: new PostgresDialect({ pool: testPool({ connectionString: db.url, max: 2 }) }),
  });
  await pool.query(`CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)`);
});

afterAll(async () => {
  await kysely.destroy();
  await client.close();
  await pgjs.end();
  await pool.end();
});

/**
 * The shared scenario: `inTx` runs `work(tx)` inside the ORM's transaction
 * and either commits or (when `fail`) throws to roll back. Checks that the
 * message is invisible from outside before the commit, and that order and
 * message are both there after a commit and both absent after a rollback.
 */
async function scenario(
  name: string,
  inTx: (
    work: (write: (item: string) => Promise<void>, tx: Executor) => Promise<void>,
    fail: boolean,
  ) => Promise<void>,
): Promise<void> {
  const queue = `orm_${name}`;
  await client.createQueue(queue);
  const boom = new Error('business rule failed');

  await inTx(async (write, tx) => {
    await write(`${name}-committed`);
    const id = await client.send(
      queue,
      { item: `${name}-committed` },
      { tx, headers: { via: name } },
    );
    const [batchA, batchB] = await client.sendBatch(queue, [{ extra: 1 }, { extra: 2 }], { tx });
    expect([batchA, batchB]).toEqual([id + 1, id + 2]);
    // Not committed yet: a reader outside the transaction sees nothing.
    expect(await client.read(queue, { qty: 10 })).toEqual([]);
  }, false);
  const committed = await client.read(queue, { qty: 10, visibilityTimeoutSeconds: 0 });
  expect(committed.map((m) => m.message)).toEqual([
    { item: `${name}-committed` },
    { extra: 1 },
    { extra: 2 },
  ]);
  expect(committed[0]!.headers).toEqual({ via: name });
  expect(
    (await pool.query(`SELECT item FROM orders WHERE item = $1`, [`${name}-committed`])).rowCount,
  ).toBe(1);

  await expect(
    inTx(async (write, tx) => {
      await write(`${name}-rolled-back`);
      await client.send(queue, { item: `${name}-rolled-back` }, { tx });
      throw boom;
    }, true),
  ).rejects.toBe(boom);
  expect(
    (await pool.query(`SELECT item FROM orders WHERE item = $1`, [`${name}-rolled-back`])).rowCount,
  ).toBe(0);
  expect((await client.metrics(queue)).queueLength).toBe(3);
  expect((await client.read(queue, { qty: 10 })).map((m) => m.message)).not.toContainEqual({
    item: `${name}-rolled-back`,
  });
}

describe('transactional send in the caller’s ORM transaction', () => {
  it('Kysely (node-postgres): kyselyExecutor(trx)', async () => {
    await scenario('kysely', (work) =>
      kysely.transaction().execute(async (trx) => {
        await work(async (item) => {
          await trx.insertInto('orders').values({ item }).execute();
        }, kyselyExecutor(trx));
      }),
    );
    // The adapter also reports rows and affected counts through execute().
    const n = await kysely.transaction().execute(async (trx) => {
      await ksql`SELECT 1`.execute(trx);
      return (
        await kyselyExecutor(trx).query(`UPDATE orders SET item = item WHERE item LIKE $1`, [
          'kysely%',
        ])
      ).rowCount;
    });
    expect(n).toBe(1);
  });

  it('Drizzle (node-postgres): drizzleExecutor(tx, sql)', async () => {
    const orm = drizzlePg(pool);
    await scenario('drizzle_pg', (work) =>
      orm.transaction(async (tx) => {
        await work(
          async (item) => {
            await tx.execute(sql`INSERT INTO orders (item) VALUES (${item})`);
          },
          drizzleExecutor(tx, sql),
        );
      }),
    );
  });

  it('Drizzle (postgres.js): drizzleExecutor(tx, sql)', async () => {
    const orm = drizzlePostgresJs(pgjs);
    await scenario('drizzle_pgjs', (work) =>
      orm.transaction(async (tx) => {
        await work(
          async (item) => {
            await tx.execute(sql`INSERT INTO orders (item) VALUES (${item})`);
          },
          drizzleExecutor(tx, sql),
        );
      }),
    );
  });

  it('Prisma-style $queryRawUnsafe: prismaExecutor(tx)', async () => {
    await scenario('prisma_style', async (work) => {
      const c = await pool.connect();
      // Prisma's interactive-transaction client exposes exactly this method.
      const tx = {
        $queryRawUnsafe: async (q: string, ...values: unknown[]) => (await c.query(q, values)).rows,
      };
      try {
        await c.query('BEGIN');
        await work(async (item) => {
          await tx.$queryRawUnsafe(`INSERT INTO orders (item) VALUES ($1)`, item);
        }, prismaExecutor(tx));
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK');
        throw err;
      } finally {
        c.release();
      }
    });
  });
});
