import { Ticker } from './ticker.js';
import type { TickerOptions } from './ticker-options.js';

interface SharedEntry {
  ticker: Ticker;
  users: number;
}
const shared = new Map<string, SharedEntry>();

/**
 * One ticker per process for a connection string and schema, shared by every
 * consumer that asks for one; released when the last of them stops.
 */
export function acquireSharedTicker(options: TickerOptions): {
  ticker: Ticker;
  release(): Promise<void>;
} {
  const key = [
    options.connectionString ?? process.env.DATABASE_URL ?? '',
    options.schema ?? 'pgque',
    options.pooler ?? 'none',
    options.listenConnectionString ?? '',
  ].join('|');
  let entry = shared.get(key);
  if (!entry) {
    entry = { ticker: new Ticker(options), users: 0 };
    shared.set(key, entry);
    void entry.ticker.start();
  }
  entry.users++;
  const e = entry;
  let released = false;
  return {
    ticker: e.ticker,
    release: async () => {
      if (released) return;
      released = true;
      if (--e.users === 0) {
        shared.delete(key);
        await e.ticker.stop();
      }
    },
  };
}
