import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueClient } from '../../src/queue/client.js';
import type { Logger } from '../../src/logger.js';
import { useTestDatabase } from '../support/db.js';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer.js';

const db = useTestDatabase();

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const noop = (): void => undefined;
  return {
    warnings,
    debug: noop,
    info: noop,
    error: noop,
    warn: (_o, m) => void warnings.push(String(m)),
  };
}

/** Sends `n` messages from many connections at once; returns how many failed. */
async function sendMany(client: QueueClient, queue: string, n: number): Promise<number> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => client.send(queue, { i })),
  );
  return results.filter((r) => r.status === 'rejected').length;
}

/** Consumes one message sent after the consumer started; says whether it listened. */
async function consumeOne(
  client: QueueClient,
  queue: string,
): Promise<{ got: number; listening: boolean }> {
  const ac = new AbortController();
  const consumer = client.consume<{ i: number }>(queue, { pollIntervalMs: 200, signal: ac.signal });
  setTimeout(() => void client.send(queue, { i: 7 }), 300);
  for await (const m of consumer) {
    await m.delete();
    const listening = consumer.isListening;
    ac.abort();
    return { got: m.message.i, listening };
  }
  throw new Error('consumer ended without a message');
}

describe('through PgBouncer in transaction mode', () => {
  let bouncer: PgBouncer;
  beforeAll(async () => {
    bouncer = await startPgBouncer(db.url, 'transaction');
  });
  afterAll(() => bouncer?.stop());

  it("pooler 'transaction': every send succeeds (no named prepared statements)", async () => {
    const client = db.track(
      new QueueClient({ connectionString: bouncer.url, pooler: 'transaction', maxConnections: 10 }),
    );
    await client.createQueue('tx_pooled');
    expect(await sendMany(client, 'tx_pooled', 400)).toBe(0);
    const [{ n }] = (await db.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${db.queueSchema}.q_tx_pooled`,
    )) as [{ n: number }];
    expect(n).toBe(400);
  });

  it("without the option, the pg driver's named statements fail there (what the option fixes)", async () => {
    const client = db.track(new QueueClient({ connectionString: bouncer.url, maxConnections: 10 }));
    await client.createQueue('tx_unaware');
    expect(await sendMany(client, 'tx_unaware', 400)).toBeGreaterThan(0);
  });

  it('without a direct URL: the consumer polls, and the driver warns once', async () => {
    const logger = recordingLogger();
    const client = db.track(
      new QueueClient({ connectionString: bouncer.url, pooler: 'transaction', logger }),
    );
    await client.createQueue('tx_poll');
    await client.enableNotifyInsert('tx_poll');
    expect(await consumeOne(client, 'tx_poll')).toEqual({ got: 7, listening: false });
    expect(await consumeOne(client, 'tx_poll')).toEqual({ got: 7, listening: false });
    expect(logger.warnings.filter((w) => /fall back to polling/.test(w))).toHaveLength(1);
  });

  it('with listenConnectionString (direct): the consumer LISTENs', async () => {
    const client = db.track(
      new QueueClient({
        connectionString: bouncer.url,
        pooler: 'transaction',
        listenConnectionString: db.url,
      }),
    );
    await client.createQueue('tx_listen');
    await client.enableNotifyInsert('tx_listen');
    expect(await consumeOne(client, 'tx_listen')).toEqual({ got: 7, listening: true });
  });
});

describe('through PgBouncer in session mode', () => {
  let bouncer: PgBouncer;
  beforeAll(async () => {
    bouncer = await startPgBouncer(db.url, 'session');
  });
  afterAll(() => bouncer?.stop());

  it("pooler 'session': sends and LISTEN work as on a direct connection", async () => {
    const client = db.track(
      new QueueClient({ connectionString: bouncer.url, pooler: 'session', maxConnections: 3 }),
    );
    await client.createQueue('session_q');
    expect(await sendMany(client, 'session_q', 100)).toBe(0);
    await client.enableNotifyInsert('session_q');
    await client.purgeQueue('session_q');
    expect(await consumeOne(client, 'session_q')).toEqual({ got: 7, listening: true });
  });
});
