import pg from 'pg';
import { PgDriver, QueueClient } from 'pgferry';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const client = new QueueClient({ driver: new PgDriver({ pool }) });
await client.createQueue('orders');
await pool.query('CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY)');

const pgClient = await pool.connect();
await pgClient.query('BEGIN');
await pgClient.query('INSERT INTO orders (id) VALUES ($1) ON CONFLICT DO NOTHING', [42]);
await client.send('orders', { orderId: 42 }, { tx: pgClient }); // rolled back with the order
await pgClient.query('COMMIT');
pgClient.release();

await client.close();
await pool.end();
