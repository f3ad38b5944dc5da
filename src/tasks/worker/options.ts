import { InvalidArgumentError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { TaskClient, TaskClientOptions } from '../client.js';
import { TaskConfigError } from '../errors.js';
import type { WorkerHooks } from '../events.js';
import type { PruneOptions } from '../pruner.js';
import type { AnyTask } from '../types.js';

export interface WorkerOptions extends Omit<TaskClientOptions, 'logger'> {
  /** The tasks this worker runs. */
  tasks: readonly AnyTask[];
  /** Use this client (its pool and schemas) instead of making one. */
  client?: TaskClient;
  /** Handlers running at once in this worker. Default 10. */
  concurrency?: number;
  /**
   * Jobs leased per fetch query, fixed. Default: adaptive, from
   * `concurrency` (at most 500) while the queue is quiet, doubling up to
   * ADAPTIVE_MAX_BATCH (1000, or `concurrency` if larger) while fetches come
   * back full and handlers wait for jobs (four-fold when every slot sat idle
   * although jobs had run: handlers far faster than a fetch), halving when a
   * fetch comes back short. docs/tasks.md "Performance".
   */
  batchSize?: number;
  /** Longest sleep between looks at an idle queue (LISTEN wakes it sooner). Default 1000. */
  pollIntervalMs?: number;
  /**
   * Longest wait after a failed fetch before trying again: retries back off
   * from 100 ms, doubling (with jitter) up to this. Default 5000.
   */
  errorRetryIntervalMs?: number;
  /** Wake on notifications (LISTEN). Turn off behind poolers that cannot LISTEN; polling remains. Default true. */
  listen?: boolean;
  /** On stop, how long running handlers may finish before they are aborted and handed back. Default 10000. */
  shutdownGraceMs?: number;
  /**
   * A job's lease lasts its task's timeoutMs plus this margin, so no other
   * worker can take it while its handler is within its timeout. Also how
   * long an aborted handler gets to return. Default 5000.
   */
  leaseMarginMs?: number;
  /**
   * Commit completions without waiting for the WAL flush (synchronous_commit
   * off, for those transactions only). A database crash may then forget the
   * last completions, and those jobs run again, as at-least-once allows.
   * Leases, retries and dead-letter moves stay durable. Default false:
   * completions are durable.
   */
  asyncCommit?: boolean;
  /** Stop gracefully on SIGINT/SIGTERM. Default true. */
  handleSignals?: boolean;
  /** Fire the tasks' cron schedules from this worker. Default true. */
  cron?: boolean;
  /** Pruning of archived jobs (one worker per interval does it); null turns it off. */
  prune?: PruneOptions | null;
  /** Progress (ctx.progress) is written at most this often per job; the latest value wins. Default 500. */
  progressIntervalMs?: number;
  /** Listeners to attach before the worker starts. */
  hooks?: WorkerHooks;
  logger?: Logger;
}

/** What a drain (runUntilIdle) did. */
export interface DrainSummary {
  succeeded: number;
  retried: number;
  dead: number;
}

/**
 * The largest adaptive fetch (jobs per query) unless `concurrency` is larger.
 * 1000 rather than 500: a backlog of fast jobs then shares each lease and
 * completion statement among twice as many jobs (100,000 no-op jobs,
 * PostgreSQL 15, interleaved cells: +3 to +8 % jobs/s, five of five pairs).
 * It grows only while handlers wait for jobs, so slow handlers never reach it.
 */
export const ADAPTIVE_MAX_BATCH = 1000;

/** The first adaptive fetch: `concurrency`, at most this. */
export const ADAPTIVE_FIRST_BATCH_CAP = 500;

/** The worker's settings after defaults and checks. */
export type WorkerSettings = Required<
  Pick<
    WorkerOptions,
    | 'concurrency'
    | 'pollIntervalMs'
    | 'errorRetryIntervalMs'
    | 'listen'
    | 'shutdownGraceMs'
    | 'leaseMarginMs'
    | 'handleSignals'
    | 'cron'
    | 'asyncCommit'
    | 'progressIntervalMs'
  >
> & {
  /** Jobs per fetch: adapts between min and max (equal when `batchSize` is given). */
  batch: { min: number; max: number };
};

function int(what: string, v: number | undefined, dflt: number, min: number, max = 2_147_483_647) {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max)
    throw new InvalidArgumentError(
      `${what} must be an integer in [${min}, ${max}], got ${String(v)}`,
    );
  return v;
}

/** Checks the options (TaskConfigError, InvalidArgumentError) and fills in the defaults. */
export function workerSettings(options: WorkerOptions): WorkerSettings {
  if (!options || !Array.isArray(options.tasks) || options.tasks.length === 0) {
    throw new TaskConfigError('Worker needs at least one task');
  }
  const names = new Set<string>();
  for (const t of options.tasks) {
    if (names.has(t.name)) throw new TaskConfigError(`task "${t.name}" is listed twice`);
    names.add(t.name);
  }
  const concurrency = int('concurrency', options.concurrency, 10, 1, 10_000);
  const fixed = int('batchSize', options.batchSize, 0, 1, 10_000);
  const max = Math.max(ADAPTIVE_MAX_BATCH, concurrency);
  return {
    concurrency,
    batch: fixed
      ? { min: fixed, max: fixed }
      : { min: Math.min(concurrency, ADAPTIVE_FIRST_BATCH_CAP), max },
    pollIntervalMs: int('pollIntervalMs', options.pollIntervalMs, 1000, 1),
    errorRetryIntervalMs: int('errorRetryIntervalMs', options.errorRetryIntervalMs, 5000, 1),
    listen: options.listen ?? true,
    shutdownGraceMs: int('shutdownGraceMs', options.shutdownGraceMs, 10_000, 0),
    leaseMarginMs: int('leaseMarginMs', options.leaseMarginMs, 5000, 1),
    handleSignals: options.handleSignals ?? true,
    cron: options.cron ?? true,
    asyncCommit: options.asyncCommit ?? false,
    progressIntervalMs: int('progressIntervalMs', options.progressIntervalMs, 500, 1),
  };
}
