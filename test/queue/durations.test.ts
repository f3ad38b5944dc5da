// Durations (docs/concepts.md, "Durations"): every option in milliseconds
// (`…Ms`); the `…Seconds` names stay one release as deprecated aliases.
// Both given is an InvalidArgumentError; each works alone.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { InvalidArgumentError } from '../../src/index.js';
import { Bus, DirectBackend, configureBus } from '../../src/bus/index.js';
import { QueueClient } from '../../src/queue/client.js';

const db = useTestDatabase();
const S = () => db.queueSchema;

/** Seconds between now (database clock) and the message's vt. */
async function vtIn(queue: string, id: number): Promise<number> {
  const [r] = await db.sql<{ s: string }>(
    `SELECT extract(epoch FROM vt - clock_timestamp()) AS s FROM ${S()}.q_${queue} WHERE msg_id = $1`,
    [id],
  );
  return Number(r!.s);
}

describe('queue durations: …Ms options and their deprecated …Seconds aliases', () => {
  it('send / sendBatch: delayMs to the millisecond, delaySeconds still works, both refused', async () => {
    const client = db.queueClient();
    await client.createQueue('dur_send');
    const a = await client.send('dur_send', { a: 1 }, { delayMs: 1500 });
    const b = await client.send('dur_send', { b: 1 }, { delaySeconds: 2 });
    const [c] = await client.sendBatch('dur_send', [{ c: 1 }], { delayMs: 60_000 });
    expect(await vtIn('dur_send', a)).toBeGreaterThan(1.0);
    expect(await vtIn('dur_send', a)).toBeLessThanOrEqual(1.5);
    expect(await vtIn('dur_send', b)).toBeGreaterThan(1.0);
    expect(await vtIn('dur_send', b)).toBeLessThanOrEqual(2);
    expect(await vtIn('dur_send', c!)).toBeGreaterThan(50);
    await expect(
      client.send('dur_send', {}, { delayMs: 1000, delaySeconds: 1 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      client.sendBatch('dur_send', [{}], { delayMs: 1000, delaySeconds: 1 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      client.send('dur_send', {}, { delayMs: 1000, deliverAt: new Date() }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.send('dur_send', {}, { delayMs: 1.5 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(await client.metrics('dur_send').then((m) => m.queueLength)).toBe(3);
  });

  it('read / readWithPoll / groups: visibilityTimeoutMs rounded up to whole seconds; maxPollMs', async () => {
    const client = db.queueClient();
    await client.createQueue('dur_read');
    const [x, y] = await client.sendBatch('dur_read', [{ x: 1 }, { y: 1 }]);
    const [m1] = await client.read('dur_read', { visibilityTimeoutMs: 1500 });
    expect(m1!.msgId).toBe(x);
    const left = await vtIn('dur_read', x!);
    expect(left).toBeGreaterThan(1.0); // 2 s, rounded up from 1.5
    expect(left).toBeLessThanOrEqual(2);
    const [m2] = await client.readWithPoll('dur_read', {
      visibilityTimeoutSeconds: 30,
      maxPollMs: 1,
    });
    expect(m2!.msgId).toBe(y);
    expect(await vtIn('dur_read', y!)).toBeGreaterThan(20);
    // Nothing visible: maxPollMs 1 waits (a rounded-up) second at most and returns empty.
    expect(await client.readWithPoll('dur_read', { maxPollMs: 1 })).toEqual([]);
    await expect(
      client.read('dur_read', { visibilityTimeoutMs: 1000, visibilityTimeoutSeconds: 1 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      client.readWithPoll('dur_read', { maxPollMs: 1000, maxPollSeconds: 1 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      client.readGrouped('dur_read', { visibilityTimeoutMs: 1000, visibilityTimeoutSeconds: 1 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      client.read('dur_read', { visibilityTimeoutMs: 1000, visibleUntil: new Date() }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('consume: visibilityTimeoutMs, or the deprecated seconds, not both', async () => {
    const client = db.queueClient();
    await client.createQueue('dur_consume');
    const id = await client.send('dur_consume', { z: 1 });
    const ac = new AbortController();
    for await (const d of client.consume('dur_consume', {
      visibilityTimeoutMs: 45_000,
      signal: ac.signal,
    })) {
      expect(d.msgId).toBe(id);
      expect(await vtIn('dur_consume', id)).toBeGreaterThan(40);
      await d.delete();
      ac.abort();
    }
    expect(() =>
      client.consume('dur_consume', { visibilityTimeoutMs: 1000, visibilityTimeoutSeconds: 1 }),
    ).toThrow(InvalidArgumentError);
  });

  it('topics: delayMs (whole seconds, rounded up), delaySeconds, not both', async () => {
    const client = db.queueClient();
    await client.createQueue('dur_topic');
    await client.bindTopic('dur.#', 'dur_topic');
    await client.sendTopic('dur.a', { t: 1 }, { delayMs: 1200 });
    const [r] = await client.sendBatchTopic('dur.b', [{ t: 2 }], { delaySeconds: 30 });
    const rows = await db.sql<{ msg_id: string; s: string }>(
      `SELECT msg_id, extract(epoch FROM vt - clock_timestamp()) AS s FROM ${S()}.q_dur_topic ORDER BY msg_id`,
    );
    expect(Number(rows[0]!.s)).toBeGreaterThan(1.0); // 2 s
    expect(Number(rows[0]!.s)).toBeLessThanOrEqual(2);
    expect(Number(rows[1]!.msg_id)).toBe(r!.msgId);
    expect(Number(rows[1]!.s)).toBeGreaterThan(20);
    await expect(
      client.sendTopic('dur.a', {}, { delayMs: 1000, delaySeconds: 1 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('archive retention: { retentionMs } or the deprecated seconds', async () => {
    const client = db.queueClient();
    await client.createQueue('dur_ret');
    await client.setArchiveRetention('dur_ret', { retentionMs: 86_400_000 });
    expect(await client.getArchiveRetention('dur_ret')).toBe(86_400);
    await client.setArchiveRetention('dur_ret', { retentionMs: 1500 });
    expect(await client.getArchiveRetention('dur_ret')).toBe(2);
    await client.setArchiveRetention('dur_ret', 60);
    expect(await client.getArchiveRetention('dur_ret')).toBe(60);
    await expect(client.setArchiveRetention('dur_ret', { retentionMs: 0 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(
      client.setArchiveRetention('dur_ret', 'a day' as unknown as number),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await client.getArchiveRetention('dur_ret')).toBe(60);
    await client.setArchiveRetention('dur_ret', { retentionMs: null });
    expect(await client.getArchiveRetention('dur_ret')).toBeNull();
  });
});

describe('bus durations', () => {
  it('Bus: visibilityTimeoutMs / maxPollMs or their deprecated aliases, not both', async () => {
    const client = db.track(
      new QueueClient({ connectionString: db.url, schema: db.queueSchema, maxConnections: 2 }),
    );
    const backend = new DirectBackend({ client });
    expect(
      () =>
        new Bus({ backend, channel: 'd', visibilityTimeoutMs: 1000, visibilityTimeoutSeconds: 1 }),
    ).toThrow(InvalidArgumentError);
    expect(() => new Bus({ backend, channel: 'd', maxPollMs: 1000, maxPollSeconds: 1 })).toThrow(
      InvalidArgumentError,
    );
    expect(() => new Bus({ backend, channel: 'd', maxPollMs: 3_600_001 })).toThrow(
      InvalidArgumentError,
    );
    const bus = new Bus({
      backend,
      channel: 'dur_bus',
      visibilityTimeoutMs: 10_000,
      maxPollMs: 200,
    });
    await bus.start();
    const other = new Bus({ backend, channel: 'dur_bus', maxPollSeconds: 1 });
    await other.start();
    const got: unknown[] = [];
    bus.subscribe((m) => {
      got.push(m);
    });
    expect(await other.publish({ hi: 1 })).toBe(1);
    for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([{ hi: 1 }]);
    await other.stop();
    await bus.stop();
  });

  it('configureBus: memberTtlMs (whole seconds, rounded up) or memberTtlSeconds, not both', async () => {
    const exec = db.pool;
    const ttl = async () =>
      Number(
        (
          await db.sql<{ t: number }>(
            `SELECT member_ttl_seconds AS t FROM public._pgferry_bus_config`,
          )
        )[0]!.t,
      );
    const before = await ttl();
    await configureBus(exec, { memberTtlMs: 90_500 });
    expect(await ttl()).toBe(91);
    await configureBus(exec, { memberTtlSeconds: 75 });
    expect(await ttl()).toBe(75);
    await expect(
      configureBus(exec, { memberTtlMs: 1000, memberTtlSeconds: 1 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await ttl()).toBe(75);
    await configureBus(exec, { memberTtlSeconds: before });
  });
});
