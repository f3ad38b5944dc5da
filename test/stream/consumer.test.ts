// pgferry/stream end to end: producer in the caller's transaction, Consumer
// with handlers, the default elected ticker (no manual ticks anywhere here),
// LISTEN wake-up, nack on handler error, cooperative mode, graceful stop.
import { describe, expect, it } from 'vitest';
import {
  Consumer,
  StreamClient,
  StreamConsumer,
  type StreamMessage,
} from '../../src/stream/index.js';
import { migrate } from '../../src/migrate/migrator.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { S } from './helpers.js';
import { testPool } from '../support/connections.js';

const db = useTestDatabase();
const fastTicker = {
  minIntervalMs: 2,
  maxIntervalMs: 50,
  electionIntervalMs: 100,
  retryIntervalMs: 50,
};

function client(): StreamClient {
  return db.track(new StreamClient({ connectionString: db.url }));
}

function consumer<T>(
  opts: Partial<ConstructorParameters<typeof Consumer<T>>[0]> & { stream: string; name: string },
): Consumer<T> {
  const c = new Consumer<T>({
    connectionString: db.url,
    ticker: fastTicker,
    handleSignals: false,
    pollIntervalMs: 200,
    ...opts,
  });
  db.track({ close: () => c.stop() });
  return c;
}

describe('Consumer', () => {
  it('fans out to 3 consumers; each handler sees every committed event once, none of a rolled-back send', async () => {
    const sc = client();
    await sc.createStream('fan');
    const seen: Record<string, number[]> = { a: [], b: [], c: [] };
    const consumers = Object.keys(seen).map((name) =>
      consumer<{ i: number }>({ stream: 'fan', name }).on(
        '*',
        (m) => void seen[name]!.push(m.payload.i),
      ),
    );
    // subscribe first (start() subscribes), then produce
    consumers.forEach((c) => void c.start());
    await eventually(async () => (await sc.consumerInfo('fan')).length === 3);
    const pool = testPool({ connectionString: db.url, max: 2 });
    db.track({ close: () => pool.end() });
    for (let i = 0; i < 50; i++) {
      const tx = await pool.connect();
      await tx.query('BEGIN');
      await sc.send('fan', { i }, { tx, type: 'n' });
      await tx.query(i % 10 === 9 ? 'ROLLBACK' : 'COMMIT');
      tx.release();
    }
    await sc.sendBatch('fan', [{ i: 100 }, { i: 101 }], { type: 'n' });
    const want = [...Array.from({ length: 50 }, (_, i) => i).filter((i) => i % 10 !== 9), 100, 101];
    await eventually(() => Object.values(seen).every((s) => s.length >= want.length), 10_000);
    for (const s of Object.values(seen)) expect([...s].sort((x, y) => x - y)).toEqual(want);
    await Promise.all(consumers.map((c) => c.stop()));
  });

  it('a failing handler nacks just its event (its writes rolled back); the retry comes back with retryCount 1', async () => {
    const sc = client();
    await sc.createStream('fail');
    await db.sql(`CREATE TABLE handled (id int, retry int)`);
    const calls: [number, number | null][] = [];
    const c = consumer<{ id: number }>({ stream: 'fail', name: 'w', retryAfterSeconds: 0 }).on(
      'job',
      async (m, ctx) => {
        calls.push([m.payload.id, m.retryCount]);
        await ctx.tx.query(`INSERT INTO handled VALUES ($1, $2)`, [m.payload.id, m.retryCount]);
        if (m.payload.id === 2 && m.retryCount === null) throw new Error('transient');
      },
    );
    void c.start();
    await eventually(async () => (await sc.consumerInfo('fail', 'w')).length === 1);
    await sc.sendBatch('fail', [{ id: 1 }, { id: 2 }, { id: 3 }], { type: 'job' });
    await eventually(
      async () =>
        calls.length === 4 && (await db.sql(`select count(*)::int as n from handled`))[0]!.n === 3,
      10_000,
    );
    expect(calls).toEqual([
      [1, null],
      [2, null],
      [3, null],
      [2, 1],
    ]);
    expect(await db.sql(`select id, retry from handled order by id, retry nulls first`)).toEqual([
      { id: 1, retry: null },
      { id: 2, retry: 1 },
      { id: 3, retry: null },
    ]);
    await c.stop();
  });

  it("unknownHandlerPolicy: 'nack' retries and dead-letters, 'ack' skips; '*' catches the rest", async () => {
    const sc = client();
    await sc.createStream('unknown');
    await sc.setConfig('unknown', 'max_retries', 0);
    const skipped: string[] = [];
    const nacker = consumer({ stream: 'unknown', name: 'nacker' }).on('known', () => undefined);
    const acker = consumer({ stream: 'unknown', name: 'acker', unknownHandlerPolicy: 'ack' }).on(
      'known',
      () => undefined,
    );
    const star: (string | null)[] = [];
    const catcher = consumer({ stream: 'unknown', name: 'catcher' })
      .on('known', () => undefined)
      .on('*', (m) => void star.push(m.type));
    for (const c of [nacker, acker, catcher]) void c.start();
    await eventually(async () => (await sc.consumerInfo('unknown')).length === 3);
    await sc.send('unknown', 1, { type: 'known' });
    await sc.send('unknown', 2, { type: 'mystery' });
    await eventually(
      async () => (await sc.dlqInspect('unknown')).length === 1 && star.length === 1,
      10_000,
    );
    const [dl] = await sc.dlqInspect('unknown');
    expect(dl).toMatchObject({ evType: 'mystery', reason: 'no handler for event type "mystery"' });
    // The one dead-letter record shape (docs/concepts.md), and the one put-back verb.
    expect(dl).toMatchObject({
      id: dl!.dlId,
      source: 'unknown',
      sourceId: dl!.evId,
      payload: '2',
      reason: 'no handler for event type "mystery"',
      attempts: (dl!.evRetry ?? 0) + 1,
      failedAt: dl!.time,
    });
    expect(star).toEqual(['mystery']);
    expect(skipped).toEqual([]);
    await eventually(
      async () => (await sc.consumerInfo('unknown', 'acker'))[0]!.currentBatch === null,
    );
    expect(
      await db.sql(
        `select count(*)::int as n from ${S}.dead_letter d join ${S}.consumer c on c.co_id = d.dl_consumer_id where c.co_name = 'acker'`,
      ),
    ).toEqual([{ n: 0 }]);
    await Promise.all([nacker.stop(), acker.stop(), catcher.stop()]);
    // Put back with the one verb (the consumers are stopped: nothing re-handles it here).
    const requeued = await sc.requeueDeadLetter(dl!.dlId);
    expect(requeued).toBeGreaterThan(dl!.evId);
    expect(await sc.dlqInspect('unknown')).toEqual([]);
    // dlqReplay / dlqReplayAll: deprecated aliases, same behaviour.
    expect(await sc.dlqReplayAll('unknown')).toEqual({ replayed: 0, failed: 0, firstError: null });
  });

  it('cooperative mode: workers of one group split the events, each handled once', async () => {
    const sc = client();
    await sc.createStream('coopts');
    const byWorker: Record<string, number[]> = { w1: [], w2: [] };
    const workers = Object.keys(byWorker).map((w) =>
      consumer<number>({
        stream: 'coopts',
        name: 'grp',
        subconsumer: w,
        deadIntervalSeconds: 30,
      }).on('*', async (m) => {
        byWorker[w]!.push(m.payload);
        await new Promise((r) => setTimeout(r, 5));
      }),
    );
    workers.forEach((w) => void w.start());
    await eventually(async () => (await sc.consumerInfo('coopts')).length === 3);
    for (let i = 0; i < 40; i++) await sc.send('coopts', i);
    await eventually(() => byWorker.w1!.length + byWorker.w2!.length >= 40, 15_000);
    const all = [...byWorker.w1!, ...byWorker.w2!].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 40 }, (_, i) => i));
    await Promise.all(workers.map((w) => w.stop()));
  });

  it('cooperative heartbeat keeps a slow batch from being taken over; a silent member loses it', async () => {
    const sc = client();
    await sc.createStream('heartbeat');
    const handled: string[] = [];
    // The others' dead interval (2 s) is 13 heartbeats: a takeover of the
    // heartbeating member would need a stall of seconds, not a loaded machine's
    // usual hiccup.
    const slow = consumer<string>({
      stream: 'heartbeat',
      name: 'g',
      subconsumer: 'slow',
      deadIntervalSeconds: 2,
      heartbeatIntervalMs: 150,
    }).on('*', async (m) => {
      handled.push(`slow:${m.payload}`);
      await new Promise((r) => setTimeout(r, 4000)); // longer than deadInterval, but heartbeating
    });
    void slow.start();
    await eventually(async () => (await sc.consumerInfo('heartbeat')).length === 2);
    await sc.send('heartbeat', 'a');
    await eventually(() => handled.length === 1, 5000);
    const other = consumer<string>({
      stream: 'heartbeat',
      name: 'g',
      subconsumer: 'other',
      deadIntervalSeconds: 2,
      pollIntervalMs: 100,
    }).on('*', (m) => void handled.push(`other:${m.payload}`));
    void other.start();
    await new Promise((r) => setTimeout(r, 3000)); // past the dead interval
    expect(handled).toEqual(['slow:a']); // no takeover while the heartbeat runs
    await slow.stop();
    await other.stop();
    // a member that holds a batch and goes silent loses it after deadInterval
    await sc.subscribeSubconsumer('heartbeat', 'g', 'silent');
    await sc.send('heartbeat', 'b');
    await sc.forceNextTick('heartbeat');
    await sc.tick('heartbeat');
    const got = await sc.receiveCoop<string>('heartbeat', 'g', 'silent');
    expect(got.map((m) => m.payload)).toEqual(['b']);
    const rescuer = consumer<string>({
      stream: 'heartbeat',
      name: 'g',
      subconsumer: 'rescuer',
      deadIntervalSeconds: 1,
      pollIntervalMs: 100,
    }).on('*', (m) => void handled.push(`rescuer:${m.payload}`));
    void rescuer.start();
    await eventually(() => handled.includes('rescuer:b'), 10_000);
    expect(await sc.ack(got[0]!.batchId)).toBe(false); // the silent member's batch id is void
    expect(handled).toEqual(['slow:a', 'rescuer:b']);
    await rescuer.stop();
  });

  it('stops gracefully on its AbortSignal; bad options are refused up front', async () => {
    const sc = client();
    await sc.createStream('abort');
    const ac = new AbortController();
    const got: StreamMessage[] = [];
    const c = consumer({ stream: 'abort', name: 'x', signal: ac.signal }).on(
      '*',
      (m) => void got.push(m),
    );
    const done = c.run();
    await eventually(async () => (await sc.consumerInfo('abort')).length === 1);
    await sc.send('abort', 'hello');
    await eventually(() => got.length === 1);
    ac.abort();
    await done;
    expect(c.isRunning).toBe(false);
    expect(() => new Consumer({ stream: '', name: 'x' })).toThrow(/stream name/);
    expect(() => new Consumer({ stream: 's', name: 'x', maxMessages: 0 })).toThrow(/maxMessages/);
    expect(() => new Consumer({ stream: 's', name: 'a.b', subconsumer: 'w' })).toThrow(/dot/);
    expect(
      () => new Consumer({ stream: 's', name: 'x', unknownHandlerPolicy: 'drop' as 'ack' }),
    ).toThrow(/unknownHandlerPolicy/);
  });
});

describe('payload validation (src/payload.ts, shared with the queue)', () => {
  it('a circular or BigInt payload is an InvalidArgumentError, as in the queue, and nothing is sent', async () => {
    const sc = client();
    await sc.createStream('bad_payloads');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const bad of [cyclic, { n: 1n }]) {
      await expect(sc.send('bad_payloads', bad)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(sc.sendBatch('bad_payloads', [1, bad])).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    }
    // Nothing reached the database: the stream's first event id is still unused.
    expect(await sc.send('bad_payloads', { ok: true })).toBe(1);
  });
});

describe('Consumer lifecycle (docs/concepts.md)', () => {
  it('StreamConsumer is the class; Consumer its deprecated alias', () => {
    expect(Consumer).toBe(StreamConsumer);
    expect(new Consumer({ stream: 's', name: 'x', client: client() })).toBeInstanceOf(
      StreamConsumer,
    );
  });

  it('start() resolves once running (subscribed), run() resolves at stop; a failed start rejects', async () => {
    const sc = client();
    await sc.createStream('life');
    const got: number[] = [];
    const c = consumer<{ i: number }>({ stream: 'life', name: 'x' }).on(
      '*',
      (m) => void got.push(m.payload.i),
    );
    await c.start();
    expect(c.isRunning).toBe(true);
    // Subscribed by the time start() resolved: an event sent now is delivered.
    expect((await sc.consumerInfo('life')).map((i) => i.consumerName)).toEqual(['x']);
    await sc.send('life', { i: 1 });
    await eventually(() => got.length === 1);
    let ended = false;
    const running = c.run().then(() => (ended = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(ended).toBe(false); // run() waits for the stop
    await c.stop();
    await running;
    expect(c.isRunning).toBe(false);
    // A stream that does not exist: start() rejects (subscribing fails), nothing keeps running.
    const bad = consumer({ stream: 'no_such_stream', name: 'x' });
    await expect(bad.start()).rejects.toThrow();
    expect(bad.isRunning).toBe(false);
  });
});

describe('a non-default schema', () => {
  it('client, consumer and ticker work end to end in schema pgque_alt', async () => {
    await migrate({
      connectionString: db.url,
      components: ['stream'],
      schemas: { stream: 'pgque_alt' },
    });
    const sc = db.track(new StreamClient({ connectionString: db.url, schema: 'pgque_alt' }));
    await sc.createStream('alt');
    const got: number[] = [];
    const c = consumer<number>({ stream: 'alt', name: 'a', schema: 'pgque_alt' }).on(
      '*',
      (m) => void got.push(m.payload),
    );
    void c.start();
    await eventually(async () => (await sc.consumerInfo('alt')).length === 1);
    await sc.sendBatch('alt', [1, 2, 3]);
    await eventually(() => got.length === 3, 10_000);
    expect(got).toEqual([1, 2, 3]);
    expect(
      await db.sql(`select count(*)::int as n from ${S}.queue where queue_name = 'alt'`),
    ).toEqual([{ n: 0 }]);
    await c.stop();
  });
});

describe('StreamClient errors', () => {
  it('maps PgQue errors to classes with stable codes', async () => {
    const sc = client();
    await expect(sc.send('missing', 1)).rejects.toMatchObject({ code: 'PGFERRY_STREAM_NOT_FOUND' });
    await sc.createStream('errs');
    await expect(sc.receive('errs', 'nobody')).rejects.toMatchObject({
      code: 'PGFERRY_NOT_SUBSCRIBED',
    });
    await expect(sc.setConfig('errs', 'bogus' as 'max_retries', 1)).rejects.toMatchObject({
      code: 'PGFERRY_INVALID_ARGUMENT',
      message: 'cannot change parameter "boguss"',
    });
    await expect(sc.nack(424242, { msgId: 1 } as StreamMessage)).rejects.toMatchObject({
      code: 'PGFERRY_BATCH_NOT_FOUND',
    });
    await expect(sc.createStream('x'.repeat(58))).rejects.toMatchObject({
      code: 'PGFERRY_INVALID_ARGUMENT',
    });
    expect(await sc.ack(424242)).toBe(false);
    await expect(sc.q(`select ${S}.request_tick('missing')`)).rejects.toMatchObject({
      code: 'PGFERRY_STREAM_NOT_FOUND',
      sqlState: 'PF401',
    });
  });
});
