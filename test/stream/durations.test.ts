// Duration options in milliseconds (`…Ms`), their deprecated `…Seconds`
// aliases (one release), both at once refused, and the interval parameters
// of setConfig in milliseconds (docs/concepts.md, "Durations").
import { describe, expect, it } from 'vitest';
import { StreamClient, StreamConsumer, type StreamMessage } from '../../src/stream/index.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { useTestDatabase } from '../support/db.js';
import { S, tick } from './helpers.js';

const db = useTestDatabase();

function client(): StreamClient {
  return db.track(new StreamClient({ connectionString: db.url }));
}

/** Sends `n` events to a new stream and returns one received batch of them. */
async function batchOf(sc: StreamClient, stream: string, n: number): Promise<StreamMessage[]> {
  await sc.createStream(stream);
  await sc.subscribe(stream, 'c');
  await sc.sendBatch(
    stream,
    Array.from({ length: n }, (_, i) => i),
  );
  await tick(db, stream);
  const got = await sc.receive(stream, 'c');
  expect(got).toHaveLength(n);
  return got;
}

/** Seconds from the nacking transaction's now() to each retry's due time, by event id. */
async function retryDelays(): Promise<Record<number, number>> {
  const rows = await db.sql<{ id: string; s: number }>(
    `SELECT ev_id AS id, round(extract(epoch FROM ev_retry_after - ev_time))::int AS s FROM ${S}.retry_queue`,
  );
  return Object.fromEntries(rows.map((r) => [Number(r.id), r.s]));
}

describe('stream durations: …Ms options, …Seconds deprecated aliases', () => {
  it('nack: retryAfterMs and its alias retryAfterSeconds give the same delay; both at once is refused', async () => {
    const sc = client();
    const [a, b, c] = await batchOf(sc, 'dur_nack', 3);
    // ev_time of the three events is one statement's now(): the delays compare exactly.
    await sc.nack(a!.batchId, a!, { retryAfterMs: 120_000 });
    await sc.nack(b!.batchId, b!, { retryAfterSeconds: 120 });
    await expect(
      sc.nack(c!.batchId, c!, { retryAfterMs: 1000, retryAfterSeconds: 1 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sc.nack(c!.batchId, c!, { retryAfterMs: -1 })).rejects.toThrow(/retryAfterMs/);
    expect(await sc.ack(a!.batchId)).toBe(true);
    const delays = await retryDelays();
    // Both due 120 s after their nack (the nacks ran within a second of each other).
    expect(Object.keys(delays).map(Number).sort()).toEqual([a!.msgId, b!.msgId]);
    expect(Math.abs(delays[a!.msgId]! - delays[b!.msgId]!)).toBeLessThanOrEqual(1);
    expect(delays[a!.msgId]).toBeGreaterThanOrEqual(120);
    // c was refused before reaching the database: it was acked with the batch, not retried.
    expect(delays[c!.msgId]).toBeUndefined();
  });

  it('dlqPurge: olderThanMs, its alias olderThanSeconds, both refused', async () => {
    const sc = client();
    await sc.createStream('dur_dlq');
    await sc.setConfig('dur_dlq', 'max_retries', 0);
    await sc.subscribe('dur_dlq', 'c');
    await sc.send('dur_dlq', { x: 1 });
    await tick(db, 'dur_dlq');
    const [m] = await sc.receive('dur_dlq', 'c');
    await sc.nack(m!.batchId, m!, { retryAfterMs: 0, reason: 'bad' });
    await sc.ack(m!.batchId);
    expect(await sc.dlqInspect('dur_dlq')).toHaveLength(1);
    await expect(
      sc.dlqPurge('dur_dlq', { olderThanMs: 0, olderThanSeconds: 0 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await sc.dlqPurge('dur_dlq', { olderThanMs: 3_600_000 })).toBe(0);
    expect(await sc.dlqPurge('dur_dlq', { olderThanSeconds: 3600 })).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(await sc.dlqPurge('dur_dlq', { olderThanMs: 1 })).toBe(1);
    expect(await sc.dlqInspect('dur_dlq')).toHaveLength(0);
  });

  it('receiveCoop: deadIntervalMs and deadIntervalSeconds take over alike; both refused', async () => {
    const sc = client();
    await sc.createStream('dur_coop');
    await sc.subscribeSubconsumer('dur_coop', 'g', 'w1');
    await sc.subscribeSubconsumer('dur_coop', 'g', 'w2');
    await sc.subscribeSubconsumer('dur_coop', 'g', 'w3');
    await sc.send('dur_coop', 1);
    await tick(db, 'dur_coop');
    const first = await sc.receiveCoop('dur_coop', 'g', 'w1');
    expect(first).toHaveLength(1);
    await expect(
      sc.receiveCoop('dur_coop', 'g', 'w2', { deadIntervalMs: 1, deadIntervalSeconds: 1 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    // An hour: w1 is alive, nothing to take over.
    expect(await sc.receiveCoop('dur_coop', 'g', 'w2', { deadIntervalMs: 3_600_000 })).toEqual([]);
    await new Promise((r) => setTimeout(r, 1100));
    const taken = await sc.receiveCoop('dur_coop', 'g', 'w2', { deadIntervalMs: 500 });
    expect(taken.map((m) => m.payload)).toEqual([1]);
    await new Promise((r) => setTimeout(r, 1100));
    const again = await sc.receiveCoop('dur_coop', 'g', 'w3', { deadIntervalSeconds: 0.5 });
    expect(again.map((m) => m.payload)).toEqual([1]);
  });

  it('StreamConsumer: both names of one duration are refused up front; each alone is taken', () => {
    const base = { connectionString: db.url, stream: 's', name: 'x', handleSignals: false };
    expect(() => new StreamConsumer({ ...base, retryAfterMs: 0, retryAfterSeconds: 0 })).toThrow(
      InvalidArgumentError,
    );
    expect(
      () =>
        new StreamConsumer({
          ...base,
          subconsumer: 'w',
          deadIntervalMs: 1,
          deadIntervalSeconds: 1,
        }),
    ).toThrow(/deadIntervalMs or its deprecated alias deadIntervalSeconds/);
    expect(() => new StreamConsumer({ ...base, retryAfterMs: -5 })).toThrow(/retryAfterMs/);
    expect(() => new StreamConsumer({ ...base, deadIntervalSeconds: -1 })).toThrow(
      /deadIntervalSeconds/,
    );
    for (const c of [
      new StreamConsumer({ ...base, retryAfterMs: 500, deadIntervalMs: 3000 }),
      new StreamConsumer({ ...base, retryAfterSeconds: 0.5, deadIntervalSeconds: 3 }),
    ]) {
      expect(c.stream).toBe('s');
      void c.client.close();
    }
  });

  it('setConfig: interval parameters in milliseconds or as interval text', async () => {
    const sc = client();
    await sc.createStream('dur_cfg');
    const period = async (): Promise<string> =>
      (
        await db.sql<{ p: string }>(
          `SELECT extract(epoch FROM queue_rotation_period)::text AS p FROM ${S}.queue WHERE queue_name = 'dur_cfg'`,
        )
      )[0]!.p;
    await sc.setConfig('dur_cfg', 'rotation_period', 90 * 60_000);
    expect(Number(await period())).toBe(5400);
    await sc.setConfig('dur_cfg', 'rotation_period', '3 hours');
    expect(Number(await period())).toBe(10800);
    await sc.setConfig('dur_cfg', 'ticker_max_lag', 1500);
    const [lag] = await db.sql<{ s: string }>(
      `SELECT extract(epoch FROM queue_ticker_max_lag)::text AS s FROM ${S}.queue WHERE queue_name = 'dur_cfg'`,
    );
    expect(Number(lag!.s)).toBe(1.5);
    await expect(sc.setConfig('dur_cfg', 'rotation_period', -1)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(Number(await period())).toBe(10800);
  });
});
