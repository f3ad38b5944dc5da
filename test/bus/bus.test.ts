import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { QueueClient } from '../../src/queue/client.js';
import {
  Bus,
  DirectBackend,
  IsolatedBackend,
  type BusBackend,
  type BusOptions,
} from '../../src/bus/index.js';
import { collect, recordingLogger } from './helpers.js';

const db = useTestDatabase();

type Kind = 'direct' | 'isolated';

function backend(kind: Kind): BusBackend {
  if (kind === 'direct') {
    const client = db.track(
      new QueueClient({ connectionString: db.url, schema: db.queueSchema, maxConnections: 4 }),
    );
    return new DirectBackend({ client });
  }
  return db.track(new IsolatedBackend({ connectionString: db.url }));
}

/** A started bus on its own backend (its own pool and LISTEN connection: a separate "process"). */
async function member<T = unknown>(
  kind: Kind,
  channel: string,
  options: Partial<BusOptions<T>> = {},
): Promise<Bus<T>> {
  const bus = new Bus<T>({ backend: backend(kind), channel, ...options });
  db.track({ close: () => bus.stop() });
  await bus.start();
  return bus;
}

async function queueExists(name: string): Promise<boolean> {
  const rows = await db.sql(`SELECT 1 FROM ${db.queueSchema}.meta WHERE queue_name = $1`, [name]);
  return rows.length === 1;
}

describe.each<Kind>(['direct', 'isolated'])('Bus over the %s backend', (kind) => {
  it('three members each get every message of the others and never their own', async () => {
    const channel = `three-${kind}`;
    const buses = [
      await member<{ from: number; n: number }>(kind, channel),
      await member<{ from: number; n: number }>(kind, channel),
      await member<{ from: number; n: number }>(kind, channel),
    ];
    const got = buses.map((b) => collect(b));
    for (let n = 0; n < 4; n++) {
      await Promise.all(buses.map(async (b, from) => expect(await b.publish({ from, n })).toBe(2)));
    }
    await eventually(() => got.every((g) => g.length === 8), 10_000);
    got.forEach((g, me) => {
      expect(g.every((x) => x.message.from !== me)).toBe(true);
      const seen = g.map((x) => `${x.message.from}:${x.message.n}`).sort();
      const want = [0, 1, 2]
        .filter((f) => f !== me)
        .flatMap((f) => [0, 1, 2, 3].map((n) => `${f}:${n}`))
        .sort();
      expect(seen).toEqual(want);
      expect(
        g.every(
          (x) =>
            x.context.channel === channel &&
            typeof x.context.msgId === 'number' &&
            !x.context.local,
        ),
      ).toBe(true);
    });
    // Everything handled is archived (by the member's next read, at most 50 ms after it went idle).
    for (const b of buses) {
      await eventually(async () => {
        const rows = await db.sql<{ n: string }>(
          `SELECT (SELECT count(*) FROM ${db.queueSchema}.q_${b.queue!}) * 100 + (SELECT count(*) FROM ${db.queueSchema}.a_${b.queue!}) AS n`,
        );
        return Number(rows[0]!.n) === 8;
      });
    }
  });

  it('run() = start() and wait: it resolves once stopped and left', async () => {
    const channel = `run-${kind}`;
    const bus = new Bus<number>({ backend: backend(kind), channel });
    db.track({ close: () => bus.stop() });
    let ended = false;
    const running = bus.run().then(() => (ended = true));
    await eventually(() => bus.running);
    const q = bus.queue!;
    await new Promise((r) => setTimeout(r, 50));
    expect(ended).toBe(false);
    await bus.stop();
    await running;
    expect(await queueExists(q)).toBe(false);
  });

  it('two channels do not mix', async () => {
    const a1 = await member<string>(kind, `mix-a-${kind}`);
    const a2 = await member<string>(kind, `mix-a-${kind}`);
    const b1 = await member<string>(kind, `mix-b-${kind}`);
    const b2 = await member<string>(kind, `mix-b-${kind}`);
    const [ga2, gb1, gb2] = [collect(a2), collect(b1), collect(b2)];
    expect(await a1.publish('for a')).toBe(1);
    expect(await b1.publish('for b')).toBe(1);
    await eventually(() => ga2.length === 1 && gb2.length === 1);
    // One more round trip on each channel, so a stray message would have arrived by now.
    expect(await a1.publish('a again')).toBe(1);
    await eventually(() => ga2.length === 2);
    expect(ga2.map((x) => x.message)).toEqual(['for a', 'a again']);
    expect(gb2.map((x) => x.message)).toEqual(['for b']);
    expect(gb1).toEqual([]);
  });

  it('a member that stops gets nothing more and its queue is gone', async () => {
    const channel = `stop-${kind}`;
    const a = await member<number>(kind, channel);
    const b = await member<number>(kind, channel);
    const gb = collect(b);
    expect(await a.publish(1)).toBe(1);
    await eventually(() => gb.length === 1);
    const q = b.queue!;
    expect(await queueExists(q)).toBe(true);
    await b.stop();
    expect(b.running).toBe(false);
    expect(await queueExists(q)).toBe(false);
    expect(await a.publish(2)).toBe(0);
    // A peer that left is not a failed publish.
    expect(a.stats.publishFailures).toBe(0);
    expect(gb.map((x) => x.message)).toEqual([1]);
    // A publish after stop is dropped, counted, never thrown.
    expect(await b.publish(3)).toBe(0);
    expect(b.stats.publishFailures).toBe(1);
    await b.stop(); // idempotent
  });

  it('wakes a waiting member within milliseconds (no polling can explain it)', async () => {
    const channel = `wake-${kind}`;
    // maxPollSeconds 30: without a notification the reader would not look again for 30 s.
    const a = await member<number>(kind, channel, { maxPollSeconds: 30 });
    const b = await member<number>(kind, channel, { maxPollSeconds: 30 });
    const arrivals: number[] = [];
    b.subscribe(() => {
      arrivals.push(Date.now());
    });
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      await a.publish(i);
      await eventually(() => arrivals.length === i + 1, 5000, 1);
      latencies.push(arrivals[i]! - t0);
    }
    expect(Math.max(...latencies)).toBeLessThan(1000);
    latencies.sort((x, y) => x - y);
    expect(latencies[2]!).toBeLessThan(100);
    // And stop does not wait out the 30 s poll.
    const t = Date.now();
    await b.stop();
    expect(Date.now() - t).toBeLessThan(5000);
  });

  it('archives and logs messages whose handler throws or that cannot be decoded', async () => {
    const channel = `errors-${kind}`;
    const logger = recordingLogger();
    const a = await member<{ n: number }>(kind, channel);
    const b = await member<{ n: number }>(kind, channel, { logger });
    const seen: number[] = [];
    b.subscribe((m) => {
      seen.push(m.n);
      if (m.n === 1) throw new Error('handler boom');
    });
    b.subscribe(async (m) => {
      if (m.n === 2) throw new Error('async boom');
    });
    await a.publish({ n: 1 });
    await a.publish({ n: 2 });
    // Not a bus envelope: written straight into b's queue.
    const raw = db.queueClient();
    await raw.send(b.queue!, { garbage: true });
    await a.publish({ n: 3 });
    await eventually(() => seen.length === 3 && b.stats.decodeErrors === 1);
    await eventually(async () => {
      const left = await db.sql<{ n: string }>(
        `SELECT count(*) AS n FROM ${db.queueSchema}.q_${b.queue!}`,
      );
      const archived = await db.sql<{ n: string }>(
        `SELECT count(*) AS n FROM ${db.queueSchema}.a_${b.queue!}`,
      );
      return Number(left[0]!.n) === 0 && Number(archived[0]!.n) === 4;
    });
    expect(seen).toEqual([1, 2, 3]);
    expect(b.stats.handlerErrors).toBe(2);
    const errors = logger.entries.filter((e) => e.level === 'error');
    expect(errors.map((e) => e.msg)).toEqual(
      expect.arrayContaining([
        'pgferry bus: handler failed; message archived',
        'pgferry bus: undecodable message archived',
      ]),
    );
    expect(
      errors.filter((e) => e.msg === 'pgferry bus: handler failed; message archived'),
    ).toHaveLength(2);
  });
});

describe('Bus without a database round trip', () => {
  it('delivers local-only messages to its own subscribers and never to the database', async () => {
    const channel = 'local';
    const a = await member<{ kind: string }>('isolated', channel, {
      isLocalOnly: (m) => m.kind === 'local',
    });
    const b = await member<{ kind: string }>('isolated', channel);
    const [ga, gb] = [collect(a), collect(b)];
    expect(await a.publish({ kind: 'local' })).toBe(0);
    await a.publishLocal({ kind: 'also local' });
    expect(ga.map((x) => x.message.kind)).toEqual(['local', 'also local']);
    expect(ga.every((x) => x.context.local && x.context.msgId === null)).toBe(true);
    const rows = await db.sql<{ n: string }>(
      `SELECT count(*) AS n FROM ${db.queueSchema}.q_${b.queue!}`,
    );
    const archived = await db.sql<{ n: string }>(
      `SELECT count(*) AS n FROM ${db.queueSchema}.a_${b.queue!}`,
    );
    expect(Number(rows[0]!.n) + Number(archived[0]!.n)).toBe(0);
    expect(gb).toEqual([]);
    expect(a.stats.localMessages).toBe(2);
  });

  it('logs and counts a publish before start and a failing backend, never throwing', async () => {
    const logger = recordingLogger();
    const broken = new IsolatedBackend({ connectionString: db.url });
    const bus = new Bus<number>({ backend: broken, channel: 'broken', logger });
    expect(await bus.publish(1)).toBe(0);
    await bus.start();
    await broken.close(); // every call now fails
    expect(await bus.publish(2)).toBe(0);
    expect(bus.stats.publishFailures).toBe(2);
    expect(
      logger.entries.filter((e) => e.level === 'warn' || e.level === 'error').length,
    ).toBeGreaterThanOrEqual(2);
    await bus.stop(); // leave fails too: logged, not thrown
    expect(logger.entries.some((e) => e.msg === 'pgferry bus: leave failed')).toBe(true);
    // The member never left: clean it up as an administrator would.
    await db.sql(`DELETE FROM public._pgferry_bus_member WHERE queue_name = $1`, [bus.queue]);
    await db.sql(`SELECT ${db.queueSchema}.drop_queue($1)`, [bus.queue]);
  });
});

describe.each<Kind>(['direct', 'isolated'])('durablePublish false over the %s backend', (kind) => {
  it('still delivers, with the publish committed asynchronously', async () => {
    const make = (): Bus<number> => {
      const b =
        kind === 'direct'
          ? new DirectBackend({
              client: db.track(
                new QueueClient({ connectionString: db.url, schema: db.queueSchema }),
              ),
              durablePublish: false,
            })
          : db.track(new IsolatedBackend({ connectionString: db.url, durablePublish: false }));
      const bus = new Bus<number>({ backend: b, channel: `async-${kind}` });
      db.track({ close: () => bus.stop() });
      return bus;
    };
    const [a, b] = [make(), make()];
    await a.start();
    await b.start();
    const got = collect(b);
    expect(await a.publish(42)).toBe(1);
    await eventually(() => got.length === 1);
    expect(got[0]!.message).toBe(42);
  });
});

describe('Bus disposal', () => {
  it('Symbol.asyncDispose stops the bus and drops its queue', async () => {
    const backend = db.track(new IsolatedBackend({ connectionString: db.url }));
    let queue: string | undefined;
    {
      const bus = new Bus<number>({ backend, channel: 'dispose' });
      await bus.start();
      queue = bus.queue;
      expect(await queueExists(queue!)).toBe(true);
      await bus[Symbol.asyncDispose]();
      expect(bus.running).toBe(false);
    }
    expect(await queueExists(queue!)).toBe(false);
    expect(
      await db.sql(`SELECT 1 FROM public._pgferry_bus_member WHERE queue_name = $1`, [queue]),
    ).toEqual([]);
  });
});

describe('Bus stopped while starting', () => {
  it('leaves again at once and leaves nothing behind', async () => {
    const backend = db.track(new IsolatedBackend({ connectionString: db.url }));
    const bus = new Bus<number>({ backend, channel: 'stop-while-starting' });
    const started = bus.start();
    const stopped = bus.stop();
    await started;
    await stopped;
    expect(bus.running).toBe(false);
    expect(bus.queue).toBeDefined();
    expect(
      await db.sql(`SELECT 1 FROM public._pgferry_bus_member WHERE queue_name = $1`, [bus.queue]),
    ).toEqual([]);
    expect(await queueExists(bus.queue!)).toBe(false);
  });
});
