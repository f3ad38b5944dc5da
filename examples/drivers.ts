import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { QueueClient, PostgresJsDriver, kyselyExecutor } from 'pgferry';

const url = process.env.DATABASE_URL;
const sql = postgres(url!, { onnotice: () => undefined });
const queues = new QueueClient({ driver: new PostgresJsDriver({ sql }) }); // or new PGliteDriver({ db })
await queues.createQueue('orders');

const kysely = new Kysely<{ orders: { id: number } }>({
  dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }),
});
await sql`CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY)`;
const order = { id: 42 };
await kysely.transaction().execute(async (trx) => {
  await trx
    .insertInto('orders')
    .values(order)
    .onConflict((c) => c.doNothing())
    .execute();
  await queues.send('orders', order, { tx: kyselyExecutor(trx) }); // commits or rolls back with the order
});

await queues.close();
await kysely.destroy();
await sql.end();
