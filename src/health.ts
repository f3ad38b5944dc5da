import { ConnectionError, PgferryError } from './errors.js';
import type { Logger } from './logger.js';

/**
 * What a long-running component reports about itself (`component.health()`):
 * the same shape for the task Worker, the queue and stream consumers, the
 * stream Ticker, the bus and the MaintenanceScheduler. See docs/reliability.md.
 */
export interface Health {
  /**
   * `running`: working normally. `reconnecting`: its last database call failed
   * and it retries with back-off. `stopped`: not started yet, or stopped.
   */
  state: 'running' | 'reconnecting' | 'stopped';
  /** When the current outage began (first failed call after a success); null unless reconnecting. */
  reconnectingSince: Date | null;
  /** Failed attempts since the current outage began (0 when running). */
  failedAttempts: number;
  /** The most recent failure, also after recovery. */
  lastError: { name: string; message: string; code?: string; at: Date } | null;
  /** The last database call that succeeded (a fetch, read, tick, pass). */
  lastSuccessAt: Date | null;
}

/** Back-off between retries: the delay doubles per failed attempt from `initialMs` up to `maxMs`. */
export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
}

/** The usual policy: start at 100 ms (or the cap if smaller) and double up to `maxMs`. */
export function retryPolicy(maxMs: number, initialMs = 100): RetryPolicy {
  return { initialMs: Math.max(1, Math.min(initialMs, maxMs)), maxMs: Math.max(1, maxMs) };
}

/**
 * The delay before retry number `failures` (1 = after the first failure):
 * min(maxMs, initialMs × 2^(failures−1)), randomised within [d/2, d] so many
 * processes that lost the same database do not all retry at the same instant.
 */
export function backoffDelayMs(
  failures: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const exp = Math.min(Math.max(failures, 1) - 1, 30);
  const d = Math.min(policy.maxMs, policy.initialMs * 2 ** exp);
  return Math.max(1, Math.round(d / 2 + (random() * d) / 2));
}

/**
 * True for failures a retry may cure: a lost or refused connection, a server
 * starting up or shutting down, a timeout. Other errors (a dropped queue, a
 * bad argument) are not retried by components that otherwise end.
 */
export function isTransientError(err: unknown): boolean {
  if (err instanceof ConnectionError) return true;
  return (
    err instanceof PgferryError && (err.code === 'PGFERRY_TIMEOUT' || err.name === 'TimeoutError')
  );
}

export interface RecoveryOptions {
  /** Names the component in log lines, e.g. `pgferry worker`. */
  component: string;
  logger: Logger;
  policy: RetryPolicy;
  /** Extra fields for every log line (queue, stream, channel). */
  context?: object;
  /** For tests. */
  random?: () => number;
}

/**
 * The shared recovery state of one component: counts failed attempts, hands
 * out the back-off delay, keeps what `health()` reports, and logs each state
 * change once (lost, recovered), not once per attempt.
 */
export class Recovery {
  private state: Health['state'] = 'stopped';
  private since: Date | null = null;
  private failures = 0;
  private lastError: Health['lastError'] = null;
  private lastSuccessAt: Date | null = null;

  constructor(private readonly o: RecoveryOptions) {}

  /** The component started (or was told to run again). */
  start(): void {
    if (this.state === 'stopped') this.state = 'running';
  }

  stop(): void {
    this.state = 'stopped';
    this.since = null;
    this.failures = 0;
  }

  get reconnecting(): boolean {
    return this.state === 'reconnecting';
  }

  /** A database call succeeded: back to `running` (logged once if it was reconnecting). */
  ok(): void {
    this.lastSuccessAt = new Date();
    if (this.state !== 'reconnecting') return;
    const downMs = Date.now() - (this.since?.getTime() ?? Date.now());
    this.o.logger.info(
      { ...this.o.context, downMs, failedAttempts: this.failures },
      `${this.o.component}: database reachable again; resumed`,
    );
    this.state = 'running';
    this.since = null;
    this.failures = 0;
  }

  /**
   * A database call failed: returns how long to wait before the next
   * attempt. The first failure after a success is logged as a warning; the
   * following ones only at debug level.
   */
  failed(err: unknown): number {
    const e = err as { name?: unknown; message?: unknown; code?: unknown };
    this.lastError = {
      name: typeof e?.name === 'string' ? e.name : 'Error',
      message: typeof e?.message === 'string' ? e.message : String(err),
      ...(typeof e?.code === 'string' ? { code: e.code } : {}),
      at: new Date(),
    };
    this.failures++;
    const delayMs = backoffDelayMs(this.failures, this.o.policy, this.o.random);
    if (this.state !== 'reconnecting') {
      if (this.state === 'running') this.state = 'reconnecting';
      this.since = new Date();
      this.o.logger.warn(
        { ...this.o.context, err, retryInMs: delayMs },
        `${this.o.component}: database call failed; retrying with back-off`,
      );
    } else {
      this.o.logger.debug(
        { ...this.o.context, err, failedAttempts: this.failures, retryInMs: delayMs },
        `${this.o.component}: still failing`,
      );
    }
    return delayMs;
  }

  health(): Health {
    return {
      state: this.state,
      reconnectingSince: this.since,
      failedAttempts: this.failures,
      lastError: this.lastError,
      lastSuccessAt: this.lastSuccessAt,
    };
  }
}
