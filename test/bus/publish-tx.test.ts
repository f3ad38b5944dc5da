// Bus publish in the caller's transaction ({ tx }): a rolled-back
// transaction delivers nothing, a committed one delivers; both backends.
import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { QueueClient } from '../../src/queue/client.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { Bus, DirectBackend, IsolatedBackend, type BusBackend } from '../../src/bus/index.js';
import { collect } from './helpers.js';

const db = useTestDatabase();

function backend(kind: 'direct' | 'isolated'): BusBackend {
  if (kind === 'isolated') return db.track(new IsolatedBackend({ connectionString: db.url }));
  const client = db.track(
    new QueueClient({ connectionString: db.url, schema: db.queueSchema, maxConnections: 3 }),
  );
  return new DirectBackend({ client });
}

async function member<T>(kind: 'direct' | 'isolated', channel: string): Promise<Bus<T>> {
  const bus = new Bus<T>({ backend: backend(kind), channel });
  db.track({ close: () => bus.stop() });
  await bus.start();
  return bus;
}

describe.each(['direct', 'isolated'] as const)('bus publish({ tx }), %s backend', (kind) => {
  it('a rolled-back transaction delivers nothing; a committed one delivers', async () => {
    const channel = `tx_${kind}`;
    const sender = await member<{ n: number }>(kind, channel);
    const receiver = await member<{ n: number }>(kind, channel);
    const got = collect(receiver);
    const client = db.queueClient();

    await client
      .transaction(async (tx) => {
        expect(await sender.publish({ n: 1 }, { tx })).toBe(1);
        throw new Error('roll back');
      })
      .catch((err: Error) => expect(err.message).toBe('roll back'));

    await client.transaction(async (tx) => {
      expect(await sender.publish({ n: 2 }, { tx })).toBe(1);
      // Not visible before the commit.
      await new Promise((r) => setTimeout(r, 300));
      expect(got).toEqual([]);
    });
    await eventually(async () => got.length >= 1, 30_000);
    // Time for a (wrong) delivery of the rolled-back message to show up.
    await new Promise((r) => setTimeout(r, 500));
    expect(got.map((g) => g.message)).toEqual([{ n: 2 }]);
    expect(sender.stats.published).toBe(2);
  });

  it('with { tx } a publish on a bus that is not running rejects (typed)', async () => {
    const bus = new Bus<{ n: number }>({ backend: backend(kind), channel: `tx_idle_${kind}` });
    await db.queueClient().transaction(async (tx) => {
      await expect(bus.publish({ n: 1 }, { tx })).rejects.toBeInstanceOf(InvalidArgumentError);
    });
    // Without tx it stays "never throws".
    expect(await bus.publish({ n: 1 })).toBe(0);
    expect(bus.stats.publishFailures).toBe(2);
  });
});
