import pg from 'pg';
import { defineTask, TaskClient, Worker } from 'pgferry/tasks';

const url = process.env.DATABASE_URL;
const pool = new pg.Pool({ connectionString: url });
await pool.query('CREATE TABLE IF NOT EXISTS invoices (order_id int PRIMARY KEY, total numeric)');

const invoice = defineTask<{ orderId: number; total: number }>({
  name: 'invoice',
  handler: async ({ orderId, total }, ctx) => {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('INSERT INTO invoices VALUES ($1, $2)', [orderId, total]);
      // The job completes in this transaction: the invoice and the completion commit together.
      await ctx.complete(c, { result: { invoiced: orderId } });
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK'); // nothing written, the job is retried as usual
      throw err;
    } finally {
      c.release();
    }
  },
});

const tasks = new TaskClient({ connectionString: url });
const job = await tasks.enqueue(invoice, { orderId: 7, total: 99.5 });
const worker = new Worker({ connectionString: url, tasks: [invoice] });
await worker.start();
console.log(await tasks.waitForResult(invoice, job.id, { timeoutMs: 10_000 }));
console.log((await pool.query('SELECT count(*)::int AS n FROM invoices')).rows[0].n);
await worker.stop();
await Promise.all([tasks.close(), pool.end()]);
