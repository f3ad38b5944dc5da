// No wake-up is lost: members on their own connections (each its own pool
// and LISTEN connection, as separate processes would have) publish bursts at
// one another while their readers are busy handling, archiving or waiting.
// The safety-net re-read is set to an hour, so a message whose wake-up was
// lost would not arrive within the test's time.
import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { QueueClient } from '../../src/queue/client.js';
import { Bus, DirectBackend, IsolatedBackend, type BusBackend } from '../../src/bus/index.js';

const db = useTestDatabase();

function backend(kind: 'direct' | 'isolated'): BusBackend {
  if (kind === 'direct') {
    const client = db.track(
      new QueueClient({ connectionString: db.url, schema: db.queueSchema, maxConnections: 3 }),
    );
    return new DirectBackend({ client });
  }
  return db.track(new IsolatedBackend({ connectionString: db.url }));
}

interface Msg {
  from: number;
  i: number;
}

const left = async (queue: string): Promise<number> =>
  Number(
    (await db.sql<{ n: string }>(`SELECT count(*) AS n FROM ${db.queueSchema}.q_${queue}`))[0]!.n,
  );

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.each(['direct', 'isolated'] as const)('bus wake-ups, %s backend', (kind) => {
  it.each([1, 3, 100])(
    'every member gets every message of every burst (batchSize %i)',
    async (batchSize) => {
      const members = 4;
      const perMember = 25;
      const channel = `wake-${kind}-${batchSize}`;
      const buses: Bus<Msg>[] = [];
      const got: Set<string>[] = [];
      for (let m = 0; m < members; m++) {
        const bus = new Bus<Msg>({
          backend: backend(kind),
          channel,
          batchSize,
          maxPollMs: 3_600_000,
        });
        const seen = new Set<string>();
        got.push(seen);
        // A handler that sometimes takes a moment: messages arrive while
        // the reader handles and archives, not only while it waits.
        bus.subscribe(async (msg) => {
          seen.add(`${msg.from}:${msg.i}`);
          if (msg.i % 7 === 0) await pause(3);
        });
        db.track({ close: () => bus.stop() });
        await bus.start();
        buses.push(bus);
      }
      // Every member publishes at once, in bursts with pauses of 0-4 ms.
      await Promise.all(
        buses.map(async (bus, from) => {
          for (let i = 0; i < perMember; i++) {
            expect(await bus.publish({ from, i })).toBe(members - 1);
            if (i % 5 === 4) await pause(Math.random() * 4);
          }
        }),
      );
      const want = (m: number): string[] => {
        const all: string[] = [];
        for (let from = 0; from < members; from++) {
          if (from === m) continue;
          for (let i = 0; i < perMember; i++) all.push(`${from}:${i}`);
        }
        return all.sort();
      };
      await eventually(() => got.every((s, m) => s.size === want(m).length), 10_000);
      got.forEach((s, m) => expect([...s].sort()).toEqual(want(m)));
      // Each exactly once: a handled message is never read again before its archive.
      buses.forEach((bus, m) => expect(bus.stats.received).toBe(want(m).length));
      for (const bus of buses) {
        expect(bus.stats.readErrors).toBe(0);
        expect(bus.stats.archiveErrors).toBe(0);
      }
      // Handled messages ride on the next read to the archive, or are archived
      // by a read of their own once the member is idle (ARCHIVE_DELAY_MS).
      await eventually(async () => {
        for (const bus of buses) if ((await left(bus.queue!)) > 0) return false;
        return true;
      }, 2000);
    },
    30_000,
  );

  it('a single message to an idle member arrives at once, again and again', async () => {
    const channel = `wake-idle-${kind}`;
    const a = new Bus<number>({ backend: backend(kind), channel, maxPollMs: 3_600_000 });
    const b = new Bus<number>({ backend: backend(kind), channel, maxPollMs: 3_600_000 });
    const seen: number[] = [];
    b.subscribe((n) => {
      seen.push(n);
    });
    for (const bus of [a, b]) {
      db.track({ close: () => bus.stop() });
      await bus.start();
    }
    for (let i = 0; i < 20; i++) {
      await a.publish(i);
      await eventually(() => seen.length === i + 1, 2000);
    }
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});
