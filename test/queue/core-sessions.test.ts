// Queue tests that need several database sessions at once (a waiting
// reader woken by another session's send, a transaction held open while
// another reader works, connections made from URLs). They cannot run on
// PGlite's single session; everything else in test/queue/core-*.test.ts can.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { QueueClient } from '../../src/index.js';
import { testClient, testPool } from '../support/connections.js';

const db = useTestDatabase();
const S = db.queueSchema;

interface Rec {
  msg_id: string;
  message: unknown;
}

let n = 0;
async function freshQueue(): Promise<string> {
  const q = `s${++n}`;
  await db.sql(`SELECT ${S}.create($1)`, [q]);
  return q;
}

interface Order {
  orderId: number;
}

describe('read_with_poll (PGMQ §7)', () => {
  it('returns as soon as a message arrives from another session', async () => {
    const q = await freshQueue();
    const started = Date.now();
    const polling = db.sql<Rec>(`SELECT * FROM ${S}.read_with_poll($1, 30, 5, 5, 50)`, [q]);
    await new Promise((r) => setTimeout(r, 300));
    await db.sql(`SELECT ${S}.send($1, '{"late":true}'::jsonb)`, [q]);
    const rows = await polling;
    expect(rows.map((r) => r.message)).toEqual([{ late: true }]);
    expect(Date.now() - started).toBeLessThan(4000);
  });
});

describe('QueueClient', () => {
  it('readWithPoll waits in the database for a message', async () => {
    const client = db.queueClient();
    await client.createQueue('polled');
    const waiting = client.readWithPoll<Order>('polled', { maxPollSeconds: 5, pollIntervalMs: 20 });
    setTimeout(() => void client.send('polled', { orderId: 9 }), 200);
    const got = await waiting;
    expect(got.map((m) => m.message.orderId)).toEqual([9]);
  });

  it("runs in the caller's own node-postgres transaction, atomically with the business write", async () => {
    const client = db.queueClient();
    await client.createQueue('outbox');
    await db.sql(`CREATE TABLE orders_biz (id int PRIMARY KEY)`);
    const pool = testPool({ connectionString: db.url, max: 2 });
    db.track({ close: () => pool.end() });
    const conn = await pool.connect();
    try {
      await conn.query('BEGIN');
      await conn.query('INSERT INTO orders_biz VALUES (1)');
      await client.send('outbox', { orderId: 1 }, { tx: conn });
      // Not visible outside the transaction yet.
      expect((await client.metrics('outbox')).queueLength).toBe(0);
      await conn.query('ROLLBACK');
      await conn.query('BEGIN');
      await conn.query('INSERT INTO orders_biz VALUES (2)');
      await client.send('outbox', { orderId: 2 }, { tx: conn });
      await conn.query('COMMIT');
    } finally {
      conn.release();
    }
    const msgs = await client.read<Order>('outbox', { qty: 10 });
    expect(msgs.map((m) => m.message.orderId)).toEqual([2]);
    expect(await db.sql(`SELECT id FROM orders_biz`)).toEqual([{ id: 2 }]);
  });

  it('connects from DATABASE_URL and from PG* variables', async () => {
    const saved = { ...process.env };
    const u = new URL(db.url);
    try {
      process.env.DATABASE_URL = db.url;
      const fromUrl = db.track(new QueueClient({ schema: db.queueSchema }));
      expect((await fromUrl.listQueues()).length).toBeGreaterThanOrEqual(0);
      delete process.env.DATABASE_URL;
      Object.assign(process.env, {
        PGHOST: u.hostname,
        PGPORT: u.port,
        PGUSER: decodeURIComponent(u.username),
        PGPASSWORD: decodeURIComponent(u.password),
        PGDATABASE: u.pathname.slice(1),
      });
      const fromPg = db.track(new QueueClient({ schema: db.queueSchema }));
      const [row] = (await fromPg.driver.query<{ d: string }>('SELECT current_database() AS d'))
        .rows;
      expect(row!.d).toBe(u.pathname.slice(1));
    } finally {
      process.env = saved;
    }
  });
});

describe('read_locked (SQL)', () => {
  it('locks visible messages without updating them; other readers skip them until commit', async () => {
    await db.sql(`SELECT ${S}.create('rl')`);
    await db.sql(`SELECT ${S}.send_batch('rl', ARRAY['{"k":1}','{"k":2}','{"k":3}']::jsonb[])`);
    await db.sql(`SELECT ${S}.send('rl', '{"k":4}'::jsonb, 3600)`);
    const a = testClient({ connectionString: db.url });
    const b = testClient({ connectionString: db.url });
    await a.connect();
    await b.connect();
    db.track({ close: async () => void (await Promise.all([a.end(), b.end()])) });
    await a.query('BEGIN');
    const locked = await a.query(
      `SELECT msg_id, read_ct, last_read_at FROM ${S}.read_locked('rl', 2)`,
    );
    expect(locked.rows).toEqual([
      { msg_id: '1', read_ct: 0, last_read_at: null },
      { msg_id: '2', read_ct: 0, last_read_at: null },
    ]);
    const other = await b.query(`SELECT msg_id FROM ${S}.read('rl', 30, 10)`);
    expect(other.rows).toEqual([{ msg_id: '3' }]);
    await a.query('ROLLBACK');
    const again = await b.query(`SELECT msg_id FROM ${S}.read_locked('rl', 10, '{"k":2}')`);
    expect(again.rows).toEqual([{ msg_id: '2' }]);
  });
});
