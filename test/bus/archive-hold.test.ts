// A member woken by notifications keeps handled messages off the read that
// answers the next wake-up (an archive never delays a delivery) and archives
// them a little later: once ARCHIVE_DELAY_MS passed, or a batch's worth
// gathered. Members on separate clients, real connections.
import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { QueueClient } from '../../src/queue/client.js';
import { Bus, DirectBackend } from '../../src/bus/index.js';
import { ARCHIVE_DELAY_MS } from '../../src/bus/wake.js';

const db = useTestDatabase();

async function member<T>(channel: string, batchSize = 10): Promise<Bus<T>> {
  const client = db.track(
    new QueueClient({ connectionString: db.url, schema: db.queueSchema, maxConnections: 2 }),
  );
  const bus = new Bus<T>({
    backend: new DirectBackend({ client }),
    channel,
    batchSize,
    maxPollMs: 3_600_000,
  });
  db.track({ close: () => bus.stop() });
  await bus.start();
  return bus;
}

const count = async (table: string): Promise<number> =>
  Number((await db.sql<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('holding handled messages back from the next read', () => {
  it('a delivery does not wait for the archive of the one before; both are archived soon after', async () => {
    const from = await member<number>('hold-one');
    const to = await member<number>('hold-one');
    const q = `${db.queueSchema}.q_${to.queue!}`;
    const a = `${db.queueSchema}.a_${to.queue!}`;
    const seen: number[] = [];
    const inQueueAtSecond: number[] = [];
    to.subscribe(async (n) => {
      seen.push(n);
      // The second is sent (and committed) while the first is handled, so
      // its wake-up is waiting when the reader is done, however slow the machine.
      if (n === 1) expect(await from.publish(2)).toBe(1);
      // When the second arrives, the first is handled but still in the queue.
      if (n === 2) inQueueAtSecond.push(await count(q));
    });
    await from.publish(1);
    // The second handler's count is pushed after an await: wait for it too.
    await eventually(() => seen.length === 2 && inQueueAtSecond.length === 1);
    expect(inQueueAtSecond).toEqual([2]);
    // Nothing comes next: a read of its own archives both, ARCHIVE_DELAY_MS after the first.
    const t = Date.now();
    await eventually(async () => (await count(q)) === 0 && (await count(a)) === 2, 3000, 5);
    expect(Date.now() - t).toBeLessThan(ARCHIVE_DELAY_MS + 1000);
    expect(seen).toEqual([1, 2]);
    expect(to.stats.received).toBe(2);
  });

  it('a batch worth of handled messages goes with the next read; none is delivered twice', async () => {
    const from = await member<number>('hold-batch');
    const to = await member<number>('hold-batch', 3);
    const q = `${db.queueSchema}.q_${to.queue!}`;
    const seen: number[] = [];
    const left: number[] = [];
    to.subscribe(async (n) => {
      seen.push(n);
      left.push(await count(q));
    });
    // Spaced so that each one is its own delivery, faster than ARCHIVE_DELAY_MS.
    for (let n = 0; n < 7; n++) {
      await from.publish(n);
      await eventually(() => seen.length === n + 1, 2000, 1);
      await pause(2);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // The read after three handled ones archived them: at most three
    // handled (plus the one being handled) were ever in the queue.
    expect(Math.max(...left)).toBeLessThanOrEqual(4);
    await eventually(async () => (await count(q)) === 0, 3000);
    expect(await count(`${db.queueSchema}.a_${to.queue!}`)).toBe(7);
    expect(to.stats.received).toBe(7);
  });
});
