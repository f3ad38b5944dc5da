import pg from 'pg';
import { StreamClient, Consumer } from 'pgferry/stream';

const url = process.env.DATABASE_URL;
const pool = new pg.Pool({ connectionString: url });
await pool.query('CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY)');
await pool.query('CREATE TABLE IF NOT EXISTS invoices (order_id int)');
const streams = new StreamClient({ connectionString: url });
await streams.createStream('orders');
await streams.subscribe('orders', 'billing');

// Consumer: handlers per event type, '*' catches the rest. It subscribes,
// LISTENs for ticks, and takes part in the elected ticker of this database.
let invoiced!: () => void;
const done = new Promise<void>((resolve) => (invoiced = resolve));
const consumer = new Consumer<{ orderId: number }>({
  connectionString: url,
  stream: 'orders',
  name: 'billing',
})
  .on('order.created', async (msg, { tx }) => {
    // tx is the batch's transaction: this write commits together with the ack
    await tx.query('INSERT INTO invoices (order_id) VALUES ($1)', [msg.payload.orderId]);
    invoiced();
  })
  .on('*', (msg) => console.log('ignored', msg.type));
const running = consumer.run(); // start(), then resolves after stop(), the AbortSignal, SIGINT or SIGTERM

// Producer: in the caller's transaction — the event is published exactly
// when (and only if) the business write commits.
const pgClient = await pool.connect();
await pgClient.query('BEGIN');
await pgClient.query('INSERT INTO orders (id) VALUES ($1)', [42]);
await streams.send('orders', { orderId: 42 }, { type: 'order.created', tx: pgClient });
await pgClient.query('COMMIT');
pgClient.release();

await done;
await consumer.stop();
await running;
await streams.close();
await pool.end();
