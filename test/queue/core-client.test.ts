import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import {
  InvalidArgumentError,
  InvalidQueueNameError,
  QueueClient,
  QueueNotFoundError,
  PgferryError,
  type Delivery,
} from '../../src/index.js';

const db = useTestDatabase();

interface Order {
  orderId: number;
  note?: string;
}

describe('QueueClient', () => {
  it('manages queues and moves typed messages', async () => {
    const client = db.queueClient();
    await client.createQueue('orders');
    await client.createQueue('orders_fast', { unlogged: true });
    const queues = await client.listQueues();
    expect(queues.map((q) => q.queueName)).toEqual(
      expect.arrayContaining(['orders', 'orders_fast']),
    );
    expect(queues.find((q) => q.queueName === 'orders_fast')).toMatchObject({
      isUnlogged: true,
      isPartitioned: false,
    });
    expect(queues[0]!.createdAt).toBeInstanceOf(Date);

    const orders = client.queue<Order>('orders');
    const id = await orders.send({ orderId: 1 }, { headers: { trace: 'abc' } });
    const ids = await orders.sendBatch([{ orderId: 2 }, { orderId: 3 }], {
      headers: [{ n: 2 }, null],
    });
    expect(ids).toEqual([id + 1, id + 2]);
    const read = await orders.read({ qty: 10, visibilityTimeoutSeconds: 60 });
    expect(read.map((m) => m.message.orderId)).toEqual([1, 2, 3]);
    expect(read.map((m) => m.headers)).toEqual([{ trace: 'abc' }, { n: 2 }, null]);
    expect(read[0]).toMatchObject({ msgId: id, readCount: 1 });
    expect(read[0]!.visibleAt.getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect(read[0]!.lastReadAt).toBeInstanceOf(Date);

    expect(await orders.archive(id)).toBe(true);
    expect(await orders.archive(id)).toBe(false);
    expect(await orders.delete([id + 1, id + 2, 999])).toEqual([id + 1, id + 2]);
    expect(await orders.delete(id + 1)).toBe(false);
    const [archived] = await db.sql(`SELECT msg_id, message FROM ${db.queueSchema}.a_orders`);
    expect(archived).toEqual({ msg_id: String(id), message: { orderId: 1 } });

    expect(await orders.purge()).toBe(0);
    expect(await orders.drop()).toBe(true);
    expect(await client.dropQueue('orders')).toBe(false);
  });

  it('delays by seconds or to a Date, reads with an absolute visibility time and a condition', async () => {
    const client = db.queueClient();
    const q = client.queue<Order>('delays');
    await q.create();
    await q.send({ orderId: 1 }, { delaySeconds: 3600 });
    await q.send({ orderId: 2 }, { deliverAt: new Date(Date.now() + 3_600_000) });
    await q.send({ orderId: 3, note: 'vip' });
    await q.send({ orderId: 4 });
    expect(
      (await q.read({ qty: 10, conditional: { note: 'vip' } })).map((m) => m.message.orderId),
    ).toEqual([3]);
    const until = new Date(Date.now() + 120_000);
    const [m] = await q.read({ visibleUntil: until });
    expect(m!.message.orderId).toBe(4);
    expect(m!.visibleAt.getTime()).toBe(until.getTime());
    expect(await q.read({ qty: 10 })).toEqual([]);
    const moved = await q.setVisibilityTimeout([1, 2], 0);
    expect(moved.map((x) => x.msgId)).toEqual([1, 2]);
    expect((await q.pop({ qty: 5 })).map((x) => x.message.orderId)).toEqual([1, 2]);
    const at = new Date('2040-01-01T00:00:00Z');
    const [set] = await q.setVisibilityTimeout(3, at);
    expect(set!.visibleAt.toISOString()).toBe(at.toISOString());
  });

  it('sendBatch numbers a large batch in array order, pairing each message with its headers', async () => {
    const client = db.queueClient();
    await client.createQueue('big_batch');
    const n = 1000;
    const ids = await client.sendBatch(
      'big_batch',
      Array.from({ length: n }, (_, i) => ({ i })),
      { headers: Array.from({ length: n }, (_, i) => (i % 3 === 0 ? null : { h: i })) },
    );
    expect(ids).toEqual(Array.from({ length: n }, (_, i) => ids[0]! + i));
    const rows = await db.sql<{
      msg_id: string;
      message: { i: number };
      headers: { h: number } | null;
    }>(`SELECT msg_id, message, headers FROM ${db.queueSchema}.q_big_batch ORDER BY msg_id`);
    rows.forEach((r, k) => {
      expect(Number(r.msg_id)).toBe(ids[k]);
      expect(r.message.i).toBe(k);
      expect(r.headers).toEqual(k % 3 === 0 ? null : { h: k });
    });
  });

  it('runs its hot-path statements as server-side prepared statements on its own driver', async () => {
    const client = db.track(
      new QueueClient({ connectionString: db.url, schema: db.queueSchema, maxConnections: 1 }),
    );
    await client.createQueue('prep');
    await client.send('prep', { a: 1 });
    await client.sendBatch('prep', [1, 2]);
    const [m] = await client.read('prep');
    await client.delete('prep', m!.msgId);
    // One pooled connection: this query runs in the session that prepared them.
    const rows = (
      await client.driver.query<{ statement: string }>(
        `SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%q_prep%' ORDER BY statement`,
      )
    ).rows;
    const kinds = rows.map((r) => r.statement.trim().split(/\s+/)[0]);
    expect(kinds).toEqual(expect.arrayContaining(['INSERT', 'DELETE']));
    expect(rows.length).toBeGreaterThanOrEqual(3);
  });

  it('reports metrics', async () => {
    const client = db.queueClient();
    await client.createQueue('measured');
    await client.sendBatch('measured', [1, 2, 3]);
    await client.read('measured', { qty: 1 });
    const m = await client.metrics('measured');
    expect(m).toMatchObject({
      queueName: 'measured',
      queueLength: 3,
      queueVisibleLength: 2,
      totalMessages: 3,
    });
    expect((await client.metricsAll()).map((x) => x.queueName)).toContain('measured');
  });

  it('throws typed errors for bad input and changes nothing', async () => {
    const client = db.queueClient();
    await client.createQueue('safe');
    await client.send('safe', { keep: true });
    const before = await db.sql(`SELECT * FROM ${db.queueSchema}.q_safe ORDER BY msg_id`);
    const tablesBefore = await db.sql(
      `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1`,
      [db.queueSchema],
    );

    await expect(client.createQueue("evil'); DROP TABLE x; --")).rejects.toBeInstanceOf(
      InvalidQueueNameError,
    );
    await expect(client.createQueue('x'.repeat(48))).rejects.toMatchObject({
      code: 'PGFERRY_INVALID_QUEUE_NAME',
    });
    await expect(client.send('a;b', {})).rejects.toBeInstanceOf(InvalidQueueNameError);
    await expect(client.send('', {})).rejects.toBeInstanceOf(InvalidQueueNameError);
    await expect(client.send(42 as unknown as string, {})).rejects.toBeInstanceOf(
      InvalidQueueNameError,
    );
    await expect(client.send('missing', {})).rejects.toBeInstanceOf(QueueNotFoundError);
    await expect(client.read('missing')).rejects.toMatchObject({
      code: 'PGFERRY_QUEUE_NOT_FOUND',
      sqlState: '42P01',
    });
    await expect(client.send('safe', undefined)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.send('safe', { n: 1n })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.send('safe', {}, { delaySeconds: 1.5 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(
      client.send('safe', {}, { delaySeconds: 1, deliverAt: new Date() }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.send('safe', {}, { deliverAt: new Date('nope') })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(client.sendBatch('safe', [])).rejects.toThrow('msgs cannot be NULL or empty');
    await expect(client.sendBatch('safe', [1, 2], { headers: [{}] })).rejects.toThrow(
      'headers array length (1) must match msgs array length (2)',
    );
    await expect(client.read('safe', { qty: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.read('safe', { visibilityTimeoutSeconds: 2 ** 31 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(client.delete('safe', [1.5])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.archive('safe', 'x' as unknown as number)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );

    // Errors raised by the SQL itself are mapped too (bypassing the TypeScript checks).
    const err = await db
      .queueClient()
      .driver.query(`SELECT ${db.queueSchema}.create($1)`, ['a$b'])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidQueueNameError);
    expect(err).toBeInstanceOf(PgferryError);
    expect((err as PgferryError).sqlState).toBe('P0001');

    expect(await db.sql(`SELECT * FROM ${db.queueSchema}.q_safe ORDER BY msg_id`)).toEqual(before);
    expect(
      await db.sql(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1`, [
        db.queueSchema,
      ]),
    ).toEqual(tablesBefore);
  });

  it('runs in its own transaction: a rollback sends nothing', async () => {
    const client = db.queueClient();
    await client.createQueue('txq');
    await expect(
      client.transaction(async (tx) => {
        await client.send('txq', { a: 1 }, { tx });
        await client.sendBatch('txq', [2, 3], { tx });
        throw new Error('business rule failed');
      }),
    ).rejects.toThrow('business rule failed');
    expect((await client.metrics('txq')).queueLength).toBe(0);
    await client.transaction(async (tx) => {
      const [id] = await client.sendBatch('txq', [1, 2], { tx });
      const seen = await client.read('txq', { qty: 5, tx });
      expect(seen.map((m) => m.msgId)).toEqual([id, id! + 1]);
      await client.delete('txq', id!, { tx });
    });
    expect((await client.metrics('txq')).queueLength).toBe(1);
  });
});

describe('Consumer (async iterator)', () => {
  it('yields messages in batches, waits when empty, and stops on abort', async () => {
    const client = db.queueClient();
    await client.createQueue('feed');
    await client.sendBatch('feed', [1, 2, 3]);
    const ac = new AbortController();
    const got: number[] = [];
    const loop = (async () => {
      for await (const d of client.consume<number>('feed', {
        batchSize: 2,
        pollIntervalMs: 20,
        signal: ac.signal,
      })) {
        got.push(d.message);
        await d.delete();
        if (got.length === 4) ac.abort();
      }
    })();
    await eventually(() => got.length === 3);
    await client.send('feed', 4);
    await loop; // ends because the signal aborted
    expect(got).toEqual([1, 2, 3, 4]);
    expect((await client.metrics('feed')).queueLength).toBe(0);
  });

  it('hands back fetched but unyielded messages when the loop is left', async () => {
    const client = db.queueClient();
    await client.createQueue('handback');
    await client.sendBatch('handback', [1, 2, 3, 4, 5]);
    for await (const d of client.consume<number>('handback', {
      batchSize: 5,
      visibilityTimeoutSeconds: 300,
    })) {
      await d.archive();
      break;
    }
    const visible = await client.read<number>('handback', { qty: 10 });
    expect(visible.map((m) => m.message)).toEqual([2, 3, 4, 5]);
  });

  it('extend and release change visibility', async () => {
    const client = db.queueClient();
    await client.createQueue('ext');
    await client.send('ext', 'a');
    const consumer = client.consume<string>('ext', { visibilityTimeoutSeconds: 30 });
    let delivery: Delivery<string> | undefined;
    for await (const d of consumer) {
      delivery = d;
      break;
    }
    const before = delivery!.visibleAt.getTime();
    await delivery!.extend(600);
    expect(delivery!.visibleAt.getTime()).toBeGreaterThan(before + 500_000);
    await delivery!.release();
    const [again] = await client.read<string>('ext');
    expect(again).toMatchObject({ message: 'a', readCount: 2 });
  });

  it('several consumers on separate pools never share a message', async () => {
    const producer = db.queueClient();
    await producer.createQueue('shared');
    const total = 300;
    await producer.sendBatch(
      'shared',
      Array.from({ length: total }, (_, i) => i),
    );
    const seen: number[] = [];
    const ac = new AbortController();
    const workers = [0, 1, 2].map(async () => {
      const c = db.queueClient();
      for await (const d of c.consume<number>('shared', {
        batchSize: 7,
        pollIntervalMs: 10,
        signal: ac.signal,
      })) {
        seen.push(d.message);
        await d.delete();
        if (seen.length >= total) ac.abort();
      }
    });
    await Promise.all(workers);
    expect(seen.length).toBe(total);
    expect(new Set(seen).size).toBe(total);
  });

  it('QueueConsumer is the class; Consumer its deprecated alias', async () => {
    const { Consumer, QueueConsumer } = await import('../../src/index.js');
    expect(Consumer).toBe(QueueConsumer);
    expect(db.queueClient().consume('any')).toBeInstanceOf(QueueConsumer);
  });

  it('stop() resolves once the loop has ended and handed back what it fetched', async () => {
    const client = db.queueClient();
    await client.createQueue('stopping');
    await client.sendBatch('stopping', [1, 2, 3]);
    const c = client.consume<number>('stopping', { batchSize: 3, pollIntervalMs: 10 });
    expect(await client.consume('stopping').stop()).toBeUndefined(); // never started: at once
    const got: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let handling!: () => void;
    const inBody = new Promise<void>((r) => (handling = r));
    const loop = (async () => {
      for await (const d of c) {
        got.push(d.message);
        await d.delete();
        handling();
        await gate; // the body is busy while stop() is called from outside
      }
    })();
    await inBody;
    let ended = false;
    const stopping = c.stop().then(() => (ended = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(ended).toBe(false); // the body has not returned yet
    release();
    await stopping;
    await loop;
    expect(got).toEqual([1]);
    // Handed back when the loop ended: visible again at once.
    expect((await client.read<number>('stopping', { qty: 5 })).map((m) => m.message)).toEqual([
      2, 3,
    ]);
  });

  it('a signal that is already aborted yields nothing', async () => {
    const client = db.queueClient();
    await client.createQueue('never');
    await client.send('never', 1);
    const got: unknown[] = [];
    for await (const d of client.consume('never', { signal: AbortSignal.abort() })) got.push(d);
    expect(got).toEqual([]);
    expect((await client.metrics('never')).queueVisibleLength).toBe(1);
  });
});
