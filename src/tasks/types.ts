import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { TxOption } from '../driver/tx-option.js';
import type { Executor } from '../driver/types.js';
import type { ChildResult } from './flows.js';
import type { Headers } from '../queue/index.js';
import type { Logger } from '../logger.js';
import type { Backoff } from './backoff.js';
import type { NormalizedRateLimit, RateLimit } from './controls.js';
import type { ControlEnqueueOptions } from './unique.js';

/** What a handler learns about the job it runs. */
export interface JobInfo {
  /** The job's id: its msg_id in the task's queue. */
  id: number;
  task: string;
  /** 1 for the first run; counts every lease, including ones a dead worker lost. */
  attempt: number;
  /** maxRetries + 1. */
  maxAttempts: number;
  enqueuedAt: Date;
  group: string | null;
  priority: number;
  headers: Headers;
}

/**
 * A handler's context. `signal`, `progress`, `complete` and `childResults`
 * are getters made on first read: read or destructure them; an object
 * spread (`{ ...ctx }`) does not copy them.
 */
export interface JobContext {
  /** Aborted on timeout (reason JobTimeoutError), cancellation (JobCancelledError) or shutdown (WorkerShutdownError). */
  signal: AbortSignal;
  job: JobInfo;
  logger: Logger;
  /**
   * Reports progress (a number or any JSON value), stored on the job and
   * readable with getJob/result. Throttled: the latest value of each
   * interval is written. Values over 64 KiB throw ResultTooLargeError.
   */
  progress(value: unknown): void;
  /**
   * Completes the job in your transaction `tx` (with an optional result),
   * so your writes and the completion commit together; the worker then does
   * not complete it again. Throws JobNotHeldError when the job is no longer
   * this attempt's (roll back then).
   */
  complete(tx: Executor, options?: { result?: unknown }): Promise<void>;
  /** A flow parent: how each child ended, with its result (empty for other jobs). */
  childResults: ChildResult[];
}

export type Handler<Out> = (input: Out, ctx: JobContext) => unknown;

/** An error class or a predicate: which errors are worth another attempt. */
export type RetryOn =
  readonly (abstract new (...args: never[]) => unknown)[] | ((error: unknown) => boolean);

/** A cron schedule that enqueues the task. */
export interface CronSchedule<In = unknown> {
  /** 5-field (minute) or 6-field (second) cron pattern, e.g. '*\/5 * * * *'. */
  pattern: string;
  /** IANA time zone the pattern is read in, e.g. 'Europe/Berlin'. Default UTC. */
  timezone?: string;
  /** Input of each enqueued job. Default {}. */
  input?: In;
  /**
   * What to do with occurrences missed while no worker ran:
   * 'runOnce' enqueues one job for the latest missed occurrence, 'skip'
   * ignores them. Default 'runOnce'.
   */
  onMissed?: 'runOnce' | 'skip';
  /** Unique schedule name. Default `<task>:<pattern>:<timezone>`. */
  name?: string;
}

export interface TaskOptions<In, Out> {
  /** Task name = queue name (1–43 letters, digits, underscores; the DLQ is `<name>_dlq`). */
  name: string;
  /** Any Standard Schema validator (zod, valibot, arktype…). Without one, the input type is whatever you declare. */
  schema?: StandardSchemaV1<In, Out>;
  handler: Handler<Out>;
  /** Attempts after the first. Default 3. */
  maxRetries?: number;
  /** Only these errors are retried; others go to the dead-letter queue at once. Default: every error. */
  retryOn?: RetryOn;
  /** Delay between attempts. Default exponential from 1 s, ×2, ≤ 1 h, with jitter. */
  backoff?: Backoff;
  /** The handler's AbortSignal fires after this long, and the attempt fails. Default 60,000. */
  timeoutMs?: number;
  /** At most this many jobs of the task run at once, across all workers and processes. */
  concurrencyLimit?: number;
  /** One job at a time per group (enqueue `{ group }`), in order. Default false. */
  grouped?: boolean;
  /** Newest job first. Default false. */
  lifo?: boolean;
  /**
   * Turns on priority ordering for this task, and is the default priority
   * of its jobs (higher runs first; enqueue `{ priority }` overrides it).
   */
  priority?: number;
  /** What happens to a finished job: kept in the archive until pruned, or deleted. Default 'archive'. */
  onComplete?: 'archive' | 'delete';
  /** Cron schedules that enqueue this task. */
  cron?: string | CronSchedule<In> | readonly (string | CronSchedule<In>)[];
  /** At most `limit` jobs start per `periodMs`, across all workers (per rate key with `perKey`). */
  rateLimit?: RateLimit;
  /** Grouped tasks: up to this many jobs of one group run at once. Default 1. */
  groupConcurrency?: number;
}

const TASK = Symbol.for('pgferry.task');

/** A defined task: pass it to `enqueue` and to a `Worker`. */
export interface Task<In = unknown, Out = In> {
  readonly [TASK]: true;
  readonly name: string;
  readonly schema: StandardSchemaV1<In, Out> | undefined;
  readonly handler: Handler<Out>;
  readonly maxRetries: number;
  readonly retryOn: RetryOn | undefined;
  readonly backoff: Backoff;
  readonly timeoutMs: number;
  readonly concurrencyLimit: number | undefined;
  readonly grouped: boolean;
  readonly lifo: boolean;
  /** undefined: no priority ordering. */
  readonly priority: number | undefined;
  readonly onComplete: 'archive' | 'delete';
  readonly cron: readonly NormalizedSchedule<In>[];
  readonly rateLimit: NormalizedRateLimit | undefined;
  readonly groupConcurrency: number;
}

export interface NormalizedSchedule<In = unknown> {
  name: string;
  pattern: string;
  timezone: string | undefined;
  input: In | undefined;
  onMissed: 'runOnce' | 'skip';
}

/**
 * A task of any input type (for lists of tasks), written without `any`: the
 * handler is declared with method syntax, which TypeScript checks
 * bivariantly, so a `Task<X>` fits while the worker still calls it with the
 * `unknown` its schema produced.
 */
export interface AnyTask extends Omit<Task<unknown, unknown>, 'handler'> {
  handler(input: unknown, ctx: JobContext): unknown;
}

export const TASK_BRAND: typeof TASK = TASK;

export function isTask(x: unknown): x is AnyTask {
  return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[TASK] === true;
}

export interface EnqueueOptions extends TxOption, ControlEnqueueOptions {
  /** Milliseconds from now before the job may run. Excludes `runAt`. */
  delayMs?: number;
  /** When the job may run. Excludes `delayMs`. */
  runAt?: Date;
  /** FIFO group (grouped tasks only). */
  group?: string;
  /** Priority (higher first); tasks defined with `priority` only. */
  priority?: number;
  /** A second enqueue with this key returns the first job while it is still queued or running. */
  idempotencyKey?: string;
  /** Extra headers stored with the job. */
  headers?: Headers;
}

export interface EnqueuedJob {
  id: number;
  task: string;
  /** True when an existing job with the same idempotency key was returned instead. */
  duplicate: boolean;
}

export interface BatchItem<In> {
  input: In;
  options?: Omit<EnqueueOptions, 'tx'>;
}
