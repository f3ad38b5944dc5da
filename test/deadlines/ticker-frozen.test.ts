import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { useFaultProxy } from '../support/fault-proxy.js';
import { Ticker } from '../../src/stream/index.js';

// The Ticker opens its own connection outside any pool: it gets the same
// deadlines as every driver, so a black-holed path (no reset, no FIN) ends
// its round with a timeout and it reconnects, instead of waiting forever
// inside a tick.

const db = useTestDatabase();
const proxy = useFaultProxy(db);

async function eventually(ok: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the Ticker on a black-holed connection', () => {
  it('times out, reports reconnecting, and leads again on a new connection', async () => {
    const ticker = new Ticker({
      connectionString: proxy().url(db.url),
      queryTimeoutMs: 1000,
      electionIntervalMs: 200,
      maxIntervalMs: 50,
    });
    db.track({ close: () => ticker.stop() });
    void ticker.start();
    await eventually(() => ticker.isLeader, 15_000);
    proxy().freezeExisting();
    await eventually(() => ticker.health().state === 'reconnecting', 15_000);
    expect(ticker.health().lastError?.name).toBe('TimeoutError');
    // New connections get through: it renews its own lease and leads again.
    await eventually(() => ticker.isLeader && ticker.health().state === 'running', 15_000);
  });
});
