import { InvalidArgumentError, TimeoutError } from '../errors.js';

/**
 * No await without a deadline: the time limits every driver pgferry creates
 * applies by default (see docs/timeouts.md). `0` disables one.
 */
export interface DeadlineOptions {
  /** Longest wait to open a connection (TCP + startup + auth). Default 10000; 0 waits forever. */
  connectTimeoutMs?: number;
  /**
   * Client-side deadline of every statement, from sending it to its last
   * row. Default 30000; 0 disables. Long-polls (`readWithPoll`, …) extend it
   * by their own poll time. On expiry the statement's connection is
   * discarded and a TimeoutError is thrown.
   */
  queryTimeoutMs?: number;
  /** TCP keep-alive: idle time before the first probe. Default 10000; 0 turns keep-alive off. */
  keepAliveMs?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
export const DEFAULT_KEEP_ALIVE_MS = 10_000;

export type Deadlines = Required<DeadlineOptions>;

/** The deadlines with their defaults, each checked to be a non-negative integer. */
export function resolveDeadlines(options: DeadlineOptions): Deadlines {
  return {
    connectTimeoutMs: ms('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
    queryTimeoutMs: ms('queryTimeoutMs', options.queryTimeoutMs, DEFAULT_QUERY_TIMEOUT_MS),
    keepAliveMs: ms('keepAliveMs', options.keepAliveMs, DEFAULT_KEEP_ALIVE_MS),
  };
}

function ms(what: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new InvalidArgumentError(
      `${what} must be a non-negative integer (milliseconds, 0 disables), got ${String(value)}`,
    );
  }
  return value;
}

/** The deadline of one statement: the base plus what the statement asked for (a long-poll's wait); 0 = none. */
export function statementDeadline(baseMs: number, extraMs: number | undefined): number {
  return baseMs > 0 ? baseMs + Math.max(0, extraMs ?? 0) : 0;
}

export function queryTimeoutError(ms: number): TimeoutError {
  return new TimeoutError(`the query did not answer within ${ms} ms (queryTimeoutMs)`);
}

/**
 * Rejects with a TimeoutError after `ms` (0: never) unless `p` settles first;
 * `onTimeout` runs once at expiry (to cancel the statement). A late
 * rejection of `p` is swallowed.
 */
export function withDeadline<T>(p: PromiseLike<T>, ms: number, onTimeout: () => void): Promise<T> {
  if (ms <= 0) return Promise.resolve(p);
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      try {
        onTimeout();
      } catch {
        // best effort: the caller already has its error
      }
      reject(queryTimeoutError(ms));
    }, ms);
    Promise.resolve(p).then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The connect timeout and keep-alive as node-postgres connection settings. */
export function pgConnectionDeadlines(d: Deadlines): {
  connectionTimeoutMillis: number;
  keepAlive: boolean;
  keepAliveInitialDelayMillis: number;
} {
  return {
    connectionTimeoutMillis: d.connectTimeoutMs,
    keepAlive: d.keepAliveMs > 0,
    keepAliveInitialDelayMillis: d.keepAliveMs,
  };
}

/**
 * Every deadline as settings of a standalone node-postgres `Client` (the
 * dedicated connections some components open outside a pool).
 */
export function pgClientDeadlines(
  options: DeadlineOptions,
): ReturnType<typeof pgConnectionDeadlines> & { query_timeout?: number } {
  const d = resolveDeadlines(options);
  return {
    ...pgConnectionDeadlines(d),
    ...(d.queryTimeoutMs > 0 ? { query_timeout: d.queryTimeoutMs } : {}),
  };
}

/** Waits for `p` at most `ms` (a connection's polite end may never come from a frozen server). */
export async function atMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]);
  if (timer) clearTimeout(timer);
}
