import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { integer, pgTable } from 'drizzle-orm/pg-core';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import {
  QueueClient,
  PGliteDriver,
  kyselyExecutor,
  drizzleExecutor,
  postgresJsExecutor,
  pgliteExecutor,
} from 'pgferry';

const url = process.env.DATABASE_URL;
const pool = new pg.Pool({ connectionString: url });
await pool.query('CREATE TABLE IF NOT EXISTS orders (id int)');
const queues = new QueueClient({ connectionString: url });
await queues.createQueue('orders');
const order = { id: 42 };

// Kysely
const db = new Kysely<{ orders: { id: number } }>({ dialect: new PostgresDialect({ pool }) });
await db.transaction().execute(async (trx) => {
  await trx.insertInto('orders').values(order).execute();
  await queues.send('orders', order, { tx: kyselyExecutor(trx) });
});

// Drizzle (node-postgres, postgres.js or PGlite underneath): pass its `sql` tag
const orders = pgTable('orders', { id: integer('id') });
const orm = drizzle(pool);
await orm.transaction(async (tx) => {
  await tx.insert(orders).values(order);
  await queues.send('orders', order, { tx: drizzleExecutor(tx, sql) });
});

// postgres.js / PGlite / Prisma interactive transactions
const sqlJs = postgres(url!);
await sqlJs.begin((tx) => queues.send('orders', order, { tx: postgresJsExecutor(tx) }));
const pglite = await PGlite.create();
const local = new QueueClient({ driver: new PGliteDriver({ db: pglite }) });
await local.migrate();
await local.createQueue('orders');
await pglite.transaction((tx) => local.send('orders', order, { tx: pgliteExecutor(tx) }));
// await prisma.$transaction((tx) => queues.send('orders', order, { tx: prismaExecutor(tx) }));

await local.close();
await pglite.close();
await sqlJs.end();
await queues.close();
await db.destroy(); // ends the pool
