import type { PoolerOptions } from '../driver/pooler.js';
import type { DeadlineOptions } from '../driver/deadlines.js';
import type { Logger } from '../logger.js';

export interface TickerOptions extends PoolerOptions, DeadlineOptions {
  /** Connection string; otherwise `DATABASE_URL`, otherwise libpq's `PG*` variables. */
  connectionString?: string;
  /** Schema of the stream engine. Default `pgque`. */
  schema?: string;
  /** Pause between ticks while events flow. Default 5. */
  minIntervalMs?: number;
  /** Longest pause when idle (the interval doubles up to it). Default 500. */
  maxIntervalMs?: number;
  /**
   * How often a follower tries to become leader (takeover time after a leader
   * dies), and the longest wait between reconnection attempts after the
   * database was lost (they back off from 100 ms up to this). Default 1000.
   */
  electionIntervalMs?: number;
  /**
   * How long the leader's lease lasts without renewal (it renews every third
   * of it): after a leader dies without stopping, a follower takes over
   * within this plus `electionIntervalMs`. Default max(5 × electionIntervalMs, 2000).
   */
  leaseMs?: number;
  /** How often due retries are moved back into their streams. Default 1000. */
  retryIntervalMs?: number;
  /** How often table rotation runs (`maint()`). Default 30000. */
  maintIntervalMs?: number;
  logger?: Logger;
  /** Called when this ticker becomes leader (true) or stops being leader (false). */
  onLeaderChange?: (leader: boolean) => void;
}

/** A ticker's intervals, defaults filled in. */
export interface TickerTiming {
  minIntervalMs: number;
  maxIntervalMs: number;
  electionIntervalMs: number;
  leaseMs: number;
  retryIntervalMs: number;
  maintIntervalMs: number;
}

export function tickerTiming(config: TickerOptions): TickerTiming {
  const electionIntervalMs = config.electionIntervalMs ?? 1000;
  return {
    minIntervalMs: config.minIntervalMs ?? 5,
    maxIntervalMs: config.maxIntervalMs ?? 500,
    electionIntervalMs,
    retryIntervalMs: config.retryIntervalMs ?? 1000,
    maintIntervalMs: config.maintIntervalMs ?? 30_000,
    leaseMs: config.leaseMs ?? Math.max(5 * electionIntervalMs, 2000),
  };
}
