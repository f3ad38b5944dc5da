import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { QueueClient } from '../../src/queue/client.js';
import { Bus, DirectBackend, safeChannel } from '../../src/bus/index.js';
import { collect, recordingLogger } from './helpers.js';

const db = useTestDatabase();

function client(): QueueClient {
  return db.track(
    new QueueClient({ connectionString: db.url, schema: db.queueSchema, maxConnections: 4 }),
  );
}

describe('DirectBackend', () => {
  it('names member queues <safe_channel>_<12 hex> and finds peers by exact prefix', async () => {
    expect(safeChannel('Pipecat:Acme/v2')).toBe('pipecat_acme_v2');
    expect(safeChannel('')).toBe('bus');
    expect(safeChannel('x'.repeat(100))).toHaveLength(34);
    const backend = new DirectBackend({ client: client() });
    const a = await backend.join('pipecat:acme/v2');
    expect(a).toMatch(/^pipecat_acme_v2_[0-9a-f]{12}$/);
    const b = await backend.join('pipecat:acme/v2');
    // Queues that merely start with the prefix are not peers.
    const c = client();
    await c.createQueue('pipecat_acme_v2_extra_0123456789ab');
    await c.createQueue('pipecat_acme_v2_0123456789abc');
    const other = await backend.join('pipecat:acme/v2_extra');
    const ids = await backend.publish('pipecat:acme/v2', a, { hi: 1 });
    expect(ids).toHaveLength(1);
    expect((await c.read(b, { qty: 10 })).map((m) => m.message)).toEqual([{ hi: 1 }]);
    expect(await c.read(a, { qty: 10 })).toEqual([]);
    expect(await c.read(other, { qty: 10 })).toEqual([]);
    expect(await c.read('pipecat_acme_v2_extra_0123456789ab', { qty: 10 })).toEqual([]);
    for (const q of [a, b]) await backend.leave(q, 'pipecat:acme/v2');
    await backend.leave(other, 'pipecat:acme/v2_extra');
  });

  it('a failing peer does not fail a publish: it is skipped, logged, and the peer cache refreshed', async () => {
    const logger = recordingLogger();
    const channel = 'failing-peer';
    // A long cache TTL: only the failure can make the publisher list queues again.
    const publisher = new Bus<number>({
      backend: new DirectBackend({ client: client(), peerCacheTtlMs: 3_600_000, logger }),
      channel,
    });
    const good = new Bus<number>({ backend: new DirectBackend({ client: client() }), channel });
    const doomed = new Bus<number>({ backend: new DirectBackend({ client: client() }), channel });
    for (const b of [publisher, good, doomed]) {
      db.track({ close: () => b.stop() });
      await b.start();
    }
    const got = collect(good);
    expect(await publisher.publish(1)).toBe(2); // fills the cache with both peers
    // The doomed peer's queue disappears behind the publisher's back.
    await doomed.stop();
    expect(await publisher.publish(2)).toBe(1);
    expect(publisher.stats.publishFailures).toBe(0);
    const warns = logger.entries.filter(
      (e) => e.msg === 'pgferry bus: peer did not receive; skipped',
    );
    expect(warns).toHaveLength(1);
    expect((warns[0]!.obj as { peer: string }).peer).toBe(doomed.queue);
    // The cache was refreshed: the next publish does not try the dead peer again.
    expect(await publisher.publish(3)).toBe(1);
    expect(
      logger.entries.filter((e) => e.msg === 'pgferry bus: peer did not receive; skipped'),
    ).toHaveLength(1);
    await eventually(() => got.length === 3);
    expect(got.map((g) => g.message)).toEqual([1, 2, 3]);
  });

  it('falls back to polling in the database when LISTEN is unavailable', async () => {
    const c = client();
    // A driver whose LISTEN always fails, as behind a transaction-mode pooler
    // (and which offers no settings for a shared LISTEN connection either).
    const noListen = new Proxy(c.driver, {
      get(target, prop, receiver) {
        if (prop === 'listen')
          return () => Promise.reject(new Error('LISTEN is not supported here'));
        if (prop === 'listenEndpoint') return undefined;
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const pollingClient = db.track(new QueueClient({ driver: noListen, schema: db.queueSchema }));
    const logger = recordingLogger();
    const a = new Bus<number>({
      backend: new DirectBackend({ client: client() }),
      channel: 'no-listen',
    });
    const b = new Bus<number>({
      backend: new DirectBackend({ client: pollingClient, logger }),
      channel: 'no-listen',
      pollIntervalMs: 20,
      maxPollSeconds: 1,
    });
    for (const x of [a, b]) {
      db.track({ close: () => x.stop() });
      await x.start();
    }
    expect(
      logger.entries.some((e) => e.msg === 'pgferry bus: LISTEN failed, falling back to polling'),
    ).toBe(true);
    const got = collect(b);
    await a.publish(7);
    await eventually(() => got.length === 1);
    expect(got[0]!.message).toBe(7);
  });
});
