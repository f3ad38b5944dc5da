// Tasks, streams and the bus through a real PgBouncer (test/support/pgbouncer.ts)
// in transaction and session modes, with and without the direct URL for
// LISTEN; and no session setting of pgferry's leaks into pooled sessions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { TaskClient } from '../../src/tasks/client.js';
import { Worker } from '../../src/tasks/worker.js';
import { Consumer, StreamClient, Ticker } from '../../src/stream/index.js';
import { Bus, DirectBackend, IsolatedBackend } from '../../src/bus/index.js';
import { QueueClient } from '../../src/queue/client.js';
import type { PoolerOptions } from '../../src/driver/pooler.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer.js';
import { collect, recordingLogger } from '../bus/helpers.js';
import { testClient } from '../support/connections.js';

const db = useTestDatabase();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const FALLBACK = /fall back to polling/;
function fallbackWarnings(logger: ReturnType<typeof recordingLogger>): number {
  return logger.entries.filter((e) => e.level === 'warn' && FALLBACK.test(e.msg ?? '')).length;
}

interface Setup {
  name: string;
  mode: 'transaction' | 'session';
  /** The client options for this setup (the direct URL is filled in at run time). */
  pooler: (direct: string) => PoolerOptions;
  /** Whether LISTEN works here (so no polling warning is expected). */
  listens: boolean;
}

const SETUPS: Setup[] = [
  {
    name: 'transaction mode, without a direct URL',
    mode: 'transaction',
    pooler: () => ({ pooler: 'transaction' }),
    listens: false,
  },
  {
    name: 'transaction mode, with listenConnectionString',
    mode: 'transaction',
    pooler: (direct) => ({ pooler: 'transaction', listenConnectionString: direct }),
    listens: true,
  },
  {
    name: 'session mode',
    mode: 'session',
    pooler: () => ({ pooler: 'session' }),
    listens: true,
  },
];

describe.each(SETUPS)('through PgBouncer: $name', (setup) => {
  let bouncer: PgBouncer;
  let opts: PoolerOptions;
  const tag = setup.name.replace(/[^a-z]+/g, '_').slice(0, 20);
  beforeAll(async () => {
    bouncer = await startPgBouncer(db.url, setup.mode);
    opts = setup.pooler(db.url);
  });
  afterAll(() => bouncer?.stop());

  it('tasks: a Worker finishes every one of 20 jobs', async () => {
    const done = new Set<number>();
    const task = defineTask<{ i: number }>({
      name: `pool_${tag}`,
      handler: ({ i }) => void done.add(i),
    });
    const logger = recordingLogger();
    const client = db.track(
      new TaskClient({ connectionString: bouncer.url, queueSchema: db.queueSchema, ...opts }),
    );
    const worker = new Worker({
      connectionString: bouncer.url,
      queueSchema: db.queueSchema,
      ...opts,
      tasks: [task],
      concurrency: 5,
      pollIntervalMs: 100,
      handleSignals: false,
      prune: null,
      logger,
    });
    db.track({ close: () => worker.stop(0) });
    await worker.start();
    for (let i = 0; i < 20; i++) await client.enqueue(task, { i });
    await eventually(() => done.size === 20, 20_000);
    await worker.stop();
    expect([...done].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(fallbackWarnings(logger)).toBe(setup.listens ? 0 : 1);
  });

  it('streams: a send reaches a Consumer (with its own Ticker)', async () => {
    const stream = `ps_${tag}`;
    const producer = db.track(new StreamClient({ connectionString: bouncer.url, ...opts }));
    await producer.createStream(stream);
    await producer.subscribe(stream, 'c');
    const logger = recordingLogger();
    const got: number[] = [];
    const consumer = new Consumer<number>({
      connectionString: bouncer.url,
      ...opts,
      stream,
      name: 'c',
      pollIntervalMs: 100,
      handleSignals: false,
      logger,
    });
    consumer.on('*', (m) => void got.push(m.payload));
    db.track({ close: () => consumer.stop() });
    void consumer.start();
    for (let i = 1; i <= 5; i++) await producer.send(stream, i);
    await eventually(() => got.length === 5, 20_000);
    expect(got.sort()).toEqual([1, 2, 3, 4, 5]);
    await consumer.stop();
    // One warning per driver at most (the consumer's; the ticker warns for itself).
    expect(fallbackWarnings(logger)).toBeLessThanOrEqual(setup.listens ? 0 : 2);
    if (!setup.listens) expect(fallbackWarnings(logger)).toBeGreaterThanOrEqual(1);
  });

  it('streams: of two Tickers exactly one leads at every moment, and the other takes over on stop', async () => {
    const tickers = [0, 1].map(() => {
      const t = new Ticker({ connectionString: bouncer.url, ...opts, electionIntervalMs: 100 });
      db.track({ close: () => t.stop() });
      return t;
    });
    tickers.forEach((t) => t.start());
    await eventually(() => tickers.some((t) => t.isLeader), 10_000);
    const leader = tickers.find((t) => t.isLeader)!;
    // Checked over 3 s (longer than the 2 s lease, so it was renewed meanwhile).
    for (let i = 0; i < 60; i++) {
      expect(tickers.filter((t) => t.isLeader)).toEqual([leader]);
      await sleep(50);
    }
    const [row] = (await db.sql(`SELECT holder FROM pgque.ticker_lease`)) as [{ holder: string }];
    expect(row.holder).toBe(leader.id);
    await leader.stop();
    const other = tickers.find((t) => t !== leader)!;
    await eventually(() => other.isLeader, 10_000);
    await other.stop();
  });

  it('bus: DirectBackend and IsolatedBackend members publish and deliver', async () => {
    const logger = recordingLogger();
    const queue = db.track(
      new QueueClient({ connectionString: bouncer.url, schema: db.queueSchema, ...opts, logger }),
    );
    const direct = new Bus<number>({
      backend: new DirectBackend({ client: queue }),
      channel: `pb_d_${tag}`,
      pollIntervalMs: 50,
      maxPollSeconds: 1,
    });
    const isolated = [0, 1].map((i) => {
      const backend = db.track(
        new IsolatedBackend({ connectionString: bouncer.url, ...opts, logger }),
      );
      const bus = new Bus<number>({
        backend,
        channel: `pb_i_${tag}`,
        pollIntervalMs: 50,
        maxPollSeconds: 1,
      });
      db.track({ close: () => bus.stop() });
      return [bus, collect(bus), i] as const;
    });
    const directPeer = new Bus<number>({
      backend: new DirectBackend({ client: queue }),
      channel: `pb_d_${tag}`,
      pollIntervalMs: 50,
      maxPollSeconds: 1,
    });
    db.track({ close: () => direct.stop() });
    db.track({ close: () => directPeer.stop() });
    const gotDirect = collect(directPeer);
    await direct.start();
    await directPeer.start();
    for (const [bus] of isolated) await bus.start();
    await direct.publish(1);
    await isolated[0]![0].publish(2);
    await eventually(() => gotDirect.length === 1 && isolated[1]![1].length === 1, 20_000);
    expect(gotDirect[0]!.message).toBe(1);
    expect(isolated[1]![1][0]!.message).toBe(2);
    // The queue client's driver and each isolated backend's driver warn once each, at most.
    expect(fallbackWarnings(logger)).toBe(setup.listens ? 0 : 3);
  });
});

/** synchronous_commit as each of `n` pooled sessions sees it (held at once, so they are distinct). */
async function pooledSettings(url: string, n: number): Promise<string[]> {
  const clients = Array.from({ length: n }, () => testClient({ connectionString: url }));
  try {
    await Promise.all(clients.map((c) => c.connect()));
    // Inside open transactions, so each holds its own server session.
    await Promise.all(clients.map((c) => c.query('BEGIN')));
    const rows = await Promise.all(clients.map((c) => c.query('SHOW synchronous_commit')));
    await Promise.all(clients.map((c) => c.query('COMMIT')));
    return rows.map((r) => (r.rows[0] as { synchronous_commit: string }).synchronous_commit);
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}

describe('no session state leaks through PgBouncer in transaction mode', () => {
  let bouncer: PgBouncer;
  beforeAll(async () => {
    // The test server runs with synchronous_commit off; new sessions of this
    // file's database start with it on, so a leaked `off` shows.
    await db.sql(
      `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = on', current_database()); END $$`,
    );
    bouncer = await startPgBouncer(db.url, 'transaction');
  });
  afterAll(() => bouncer?.stop());

  it('after a Ticker and a Worker ran, every pooled session still has synchronous_commit = on', async () => {
    expect(await pooledSettings(bouncer.url, 4)).toEqual(['on', 'on', 'on', 'on']);
    const producer = db.track(
      new StreamClient({ connectionString: bouncer.url, pooler: 'transaction' }),
    );
    await producer.createStream('leak_s');
    await producer.subscribe('leak_s', 'c');
    const ticker = new Ticker({
      connectionString: bouncer.url,
      pooler: 'transaction',
      electionIntervalMs: 100,
      maxIntervalMs: 20,
      retryIntervalMs: 10,
      maintIntervalMs: 50,
    });
    db.track({ close: () => ticker.stop() });
    ticker.start();
    await eventually(() => ticker.isLeader, 10_000);
    const before = (await producer.streamInfo('leak_s'))[0]!.lastTickId ?? 0;
    for (let i = 0; i < 20; i++) {
      await producer.send('leak_s', i);
      await sleep(20);
    }
    await eventually(
      async () => ((await producer.streamInfo('leak_s'))[0]!.lastTickId ?? 0) > before + 2,
      10_000,
    );
    let handled = 0;
    const task = defineTask<{ i: number }>({ name: 'leak_t', handler: () => void handled++ });
    const tasks = db.track(
      new TaskClient({
        connectionString: bouncer.url,
        queueSchema: db.queueSchema,
        pooler: 'transaction',
      }),
    );
    const worker = new Worker({
      connectionString: bouncer.url,
      queueSchema: db.queueSchema,
      pooler: 'transaction',
      tasks: [task],
      pollIntervalMs: 50,
      handleSignals: false,
      prune: null,
    });
    db.track({ close: () => worker.stop(0) });
    await worker.start();
    for (let i = 0; i < 10; i++) await tasks.enqueue(task, { i });
    await eventually(() => handled === 10, 20_000);
    await worker.stop();
    await ticker.stop();
    // The pool has 4 server sessions; holding 4 at once sees every one of them.
    expect(await pooledSettings(bouncer.url, 4)).toEqual(['on', 'on', 'on', 'on']);
  });

  it('the check sees a leak: a session SET through the pooler stays on a server session', async () => {
    const c = testClient({ connectionString: bouncer.url });
    await c.connect();
    await c.query('SET synchronous_commit = off');
    await c.end();
    expect(await pooledSettings(bouncer.url, 4)).toContain('off');
  });
});
