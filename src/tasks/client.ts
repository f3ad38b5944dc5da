import type { Driver, Executor, Queryable } from '../driver/types.js';
import type { TxOption } from '../driver/tx-option.js';
import { traceSend, traceSendBatch } from '../telemetry/tracing.js';
import { execute } from '../driver/types.js';
import { resolveDriver, type ConnectionOptions } from '../driver/resolve.js';
import { InvalidArgumentError, QueueNotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { checkSchemaName } from '../migrate/schema-name.js';
import { toJson, toMessage, type Headers, type Message } from '../queue/index.js';
import { checkTaskName } from './define.js';
import { DeadLetters } from './dead-letters.js';
import { TaskConfigError } from './errors.js';
import { H } from './headers.js';
import { TaskStatements, type RunAt } from './statements.js';
import type { AnyTask, BatchItem, EnqueuedJob, EnqueueOptions, Task } from './types.js';
import { checkIdempotencyKey, validateInput } from './validate.js';
import { bulk, type JobFilter } from './bulk.js';
import { configureTask, isPaused, setPaused } from './controls.js';
import { controlOptions, enqueueKeyed, refuseInBatch } from './unique.js';
import {
  childResults,
  enqueueFlow,
  type ChildResult,
  type EnqueuedFlow,
  type FlowSpec,
} from './flows.js';
import { jobHistory, type JobAttempt } from './history.js';
import {
  checkId,
  pruneResults,
  readResult,
  waitForResult,
  type JobResult,
  type WaitForResultOptions,
} from './results.js';

export interface TaskClientOptions extends ConnectionOptions {
  /** Schema of the queue engine. Default `pgmq`. */
  queueSchema?: string;
  /** Schema of the tasks engine. Default `pgferry_tasks`. */
  tasksSchema?: string;
  logger?: Logger;
}

/** Where a job is in its life (see the state machine in docs/tasks.md). */
export type JobState =
  | 'scheduled' // waiting for its run time
  | 'queued' // runnable now
  | 'running' // leased by a worker
  | 'retrying' // failed, waiting for its next attempt
  | 'completed'
  | 'cancelled'
  | 'dead'; // moved to the dead-letter queue

export interface JobSnapshot {
  id: number;
  task: string;
  state: JobState;
  input: unknown;
  headers: Headers;
  attempts: number;
  enqueuedAt: Date;
  runAt: Date;
  archivedAt: Date | null;
  /** The latest value the handler reported with ctx.progress (undefined: none). */
  progress: unknown;
}

/**
 * Enqueues jobs and manages them (cancel, inspect, dead letters). A Worker
 * runs them. Every call accepts `{ tx }` where it writes, to be atomic with
 * the caller's own writes.
 */
export class TaskClient {
  readonly driver: Driver;
  readonly queueSchema: string;
  readonly tasksSchema: string;
  readonly logger: Logger;
  /** @internal */
  readonly statements: TaskStatements;
  private readonly ownsDriver: boolean;
  private readonly ensured = new Map<string, Promise<void>>();

  constructor(options: TaskClientOptions = {}) {
    this.queueSchema = checkSchemaName(options.queueSchema ?? 'pgmq');
    this.tasksSchema = checkSchemaName(options.tasksSchema ?? 'pgferry_tasks');
    this.logger = options.logger ?? silentLogger;
    ({ driver: this.driver, owned: this.ownsDriver } = resolveDriver(options, this.logger));
    this.statements = new TaskStatements(this.queueSchema, this.tasksSchema);
  }

  /** Runs `fn` in a transaction; pass its `tx` as `{ tx }`. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.driver.transaction(fn);
  }

  /**
   * Creates the task queues (and dead-letter queues, indexes, wake-up
   * trigger) if missing. enqueue and Worker do this on first use; call it
   * to do it up front (e.g. in a deploy step).
   */
  ensure(tasks: AnyTask | readonly AnyTask[]): Promise<void> {
    const list = Array.isArray(tasks) ? (tasks as readonly AnyTask[]) : [tasks as AnyTask];
    // …and writes their controls (rate limit, group concurrency) to the registry.
    const configure = (t: AnyTask) => configureTask(this.statements, this.driver, t);
    return Promise.all(list.map((t) => this.ensureOne(t).then(() => configure(t)))).then(() => {});
  }

  private ensureOne(task: AnyTask): Promise<void> {
    const key = ensureKey(task);
    let p = this.ensured.get(key);
    if (!p) {
      p = this.statements
        .ensureTask(this.driver, task.name, task.grouped, task.priority !== undefined)
        .then(() => undefined);
      p.catch(() => this.ensured.delete(key));
      this.ensured.set(key, p);
    }
    return p;
  }

  /**
   * Ensures the task once, then runs `fn`. When the queue was dropped behind
   * this client's back (QueueNotFoundError), it forgets that the task was
   * ensured, ensures it again and retries once — except inside the caller's
   * transaction, which the failed statement has already aborted.
   */
  private async withQueue<R>(
    task: AnyTask,
    tx: Executor | undefined,
    fn: (exec: Executor) => Promise<R>,
  ): Promise<R> {
    await this.ensureOne(task);
    try {
      return await fn(tx ?? this.driver);
    } catch (err) {
      if (!(err instanceof QueueNotFoundError) || tx) throw err;
      this.ensured.delete(ensureKey(task));
      await this.ensureOne(task);
      return fn(this.driver);
    }
  }

  /**
   * Validates `input` with the task's schema (throws TaskValidationError,
   * nothing sent) and enqueues one job.
   */
  enqueue<In, Out>(
    task: Task<In, Out>,
    input: In,
    options: EnqueueOptions = {},
  ): Promise<EnqueuedJob> {
    // A send span when tracing is on; its traceparent goes into the job's headers.
    return traceSend(
      task.name,
      options.headers,
      (h) => this.enqueueNow(task, input, h ? { ...options, headers: h } : options),
      (r) => r.id,
    );
  }

  private async enqueueNow<In, Out>(
    task: Task<In, Out>,
    input: In,
    options: EnqueueOptions,
  ): Promise<EnqueuedJob> {
    await validateInput(task, input);
    const body = toJson('input', input);
    const { headers, key, runAt, keyed } = this.jobHeaders(task, options);
    const r = await this.withQueue(task, options.tx, (exec) =>
      keyed
        ? enqueueKeyed(this.statements, exec, task.name, body, headers, runAt, keyed)
        : this.statements.enqueue(exec, task.name, body, headers, key, runAt),
    );
    return { id: r.id, task: task.name, duplicate: r.duplicate };
  }

  /** Validates every input first (all or nothing), then enqueues them in one statement. */
  async enqueueBatch<In, Out>(
    task: Task<In, Out>,
    jobs: readonly BatchItem<In>[],
    options: TxOption = {},
  ): Promise<EnqueuedJob[]> {
    if (!Array.isArray(jobs) || jobs.length === 0)
      throw new InvalidArgumentError('enqueueBatch needs at least one job');
    // One send span when tracing is on; its traceparent goes into every job's headers.
    return traceSendBatch(task.name, jobs.length, (tc) =>
      this.enqueueBatchNow(task, jobs, options, tc),
    );
  }

  private async enqueueBatchNow<In, Out>(
    task: Task<In, Out>,
    jobs: readonly BatchItem<In>[],
    options: TxOption,
    traceContext: Headers | null,
  ): Promise<EnqueuedJob[]> {
    const bodies: string[] = [];
    const headers: string[] = [];
    const keys: (string | undefined)[] = [];
    const runAts: RunAt[] = [];
    for (const [i, job] of jobs.entries()) {
      if (typeof job !== 'object' || job === null || !('input' in job)) {
        throw new InvalidArgumentError(`jobs[${i}] must be { input, options? }`);
      }
      await validateInput(task, job.input);
      refuseInBatch(job.options, i);
      bodies.push(toJson(`jobs[${i}].input`, job.input));
      const o = job.options ?? {};
      const h = this.jobHeaders(
        task,
        traceContext ? { ...o, headers: { ...o.headers, ...traceContext } } : o,
      );
      headers.push(h.headers);
      keys.push(h.key);
      runAts.push(h.runAt);
    }
    const res = await this.withQueue(task, options.tx, (exec) =>
      this.statements.enqueueBatch(exec, task.name, bodies, headers, keys, runAts),
    );
    return res.map((r) => ({ id: r.id, task: task.name, duplicate: r.duplicate }));
  }

  /** @internal The headers, idempotency key and run time of one job (also used by enqueueFlow). */
  jobHeaders(
    task: AnyTask,
    o: Omit<EnqueueOptions, 'tx'>,
  ): { headers: string; key: string | undefined; runAt: RunAt } & {
    keyed: ReturnType<typeof controlOptions>;
  } {
    const h: Headers = { ...(o.headers ?? {}), [H.task]: task.name };
    const keyed = controlOptions(task, o, h);
    if (o.group !== undefined) {
      if (!task.grouped)
        throw new TaskConfigError(
          `task "${task.name}" is not grouped; define it with grouped: true to use groups`,
        );
      if (typeof o.group !== 'string' || o.group.length === 0)
        throw new InvalidArgumentError('group must be a non-empty string');
      h[H.group] = o.group;
    }
    if (o.priority !== undefined) {
      if (task.priority === undefined) {
        throw new TaskConfigError(
          `task "${task.name}" has no priority ordering; define it with a default priority to use priorities`,
        );
      }
      if (!Number.isInteger(o.priority) || Math.abs(o.priority) > 2_147_483_647) {
        throw new InvalidArgumentError(`priority must be an integer, got ${String(o.priority)}`);
      }
    }
    const priority = o.priority ?? task.priority;
    if (priority !== undefined) h[H.priority] = priority;
    if (o.idempotencyKey !== undefined) {
      h[H.idempotencyKey] = checkIdempotencyKey(o.idempotencyKey);
    }
    let runAt: RunAt = { at: null, delayMs: 0 };
    if (o.runAt !== undefined) {
      if (o.delayMs !== undefined)
        throw new InvalidArgumentError('give delayMs or runAt, not both');
      if (!(o.runAt instanceof Date) || Number.isNaN(o.runAt.getTime()))
        throw new InvalidArgumentError('runAt must be a valid Date');
      runAt = { at: o.runAt, delayMs: 0 };
    } else if (o.delayMs !== undefined) {
      if (typeof o.delayMs !== 'number' || !Number.isFinite(o.delayMs) || o.delayMs < 0) {
        throw new InvalidArgumentError(
          `delayMs must be a non-negative number, got ${String(o.delayMs)}`,
        );
      }
      runAt = { at: null, delayMs: o.delayMs };
    }
    return { headers: toJson('headers', h), key: o.idempotencyKey, runAt, keyed };
  }

  /**
   * Cancels a job by id: a queued job never runs; a running job's handler
   * is aborted (JobCancelledError) and its result discarded. Returns what
   * the job was, or 'not_found' (finished, dead, or never existed).
   */
  cancel(
    task: AnyTask | string,
    id: number,
    options: TxOption = {},
  ): Promise<'queued' | 'running' | 'not_found'> {
    const name = typeof task === 'string' ? checkTaskName(task) : task.name;
    if (!Number.isSafeInteger(id))
      throw new InvalidArgumentError(`job id must be an integer, got ${String(id)}`);
    return this.statements.cancel(options.tx ?? this.driver, name, id);
  }

  /** Where a job is now (queue or archive), or null when it is gone. */
  async getJob(
    task: AnyTask | string,
    id: number,
    options: TxOption = {},
  ): Promise<JobSnapshot | null> {
    const name = typeof task === 'string' ? checkTaskName(task) : task.name;
    const exec = options.tx ?? this.driver;
    const records = this.statements.queue.records;
    const r = await records.get(exec, name, id);
    if (r) {
      const m = toMessage(r);
      const future = m.visibleAt.getTime() > new Date(r.now).getTime();
      const running = m.lastReadAt !== null && future;
      const waiting = m.readCount > 0 ? 'retrying' : 'scheduled';
      return snapshot(name, m, running ? 'running' : future ? waiting : 'queued', null);
    }
    const arc = await records.getArchived(exec, name, id);
    if (!arc) return null;
    const m = toMessage(arc);
    const st = (m.headers ?? {})[H.state];
    const state: JobState = st === 'dead' ? 'dead' : st === 'cancelled' ? 'cancelled' : 'completed';
    return snapshot(name, m, state, new Date(arc.archived_at));
  }

  /**
   * Pauses the task on every worker: no job of it starts until resume()
   * (running ones finish). Returns false when it was paused already.
   */
  async pause(task: AnyTask | string): Promise<boolean> {
    return setPaused(this.statements, this.driver, taskName(task), true);
  }

  /** Resumes a paused task and wakes its workers. Returns false when it was not paused. */
  async resume(task: AnyTask | string): Promise<boolean> {
    return setPaused(this.statements, this.driver, taskName(task), false);
  }

  /** Whether the task is paused (false for a task not registered yet). */
  async isPaused(task: AnyTask | string): Promise<boolean> {
    return isPaused(this.statements, this.driver, taskName(task));
  }

  /** Retries dead (requeued from the dead-letter queue) and retrying (run now) jobs matching the filter; returns how many. */
  async retryJobs(
    task: AnyTask | string,
    filter: JobFilter = {},
    o: TxOption = {},
  ): Promise<number> {
    return bulk(this.statements, o.tx ?? this.driver, 'retry', taskName(task), filter);
  }

  /** Cancels live jobs matching the filter (default states queued, scheduled, retrying); returns how many. */
  async cancelJobs(
    task: AnyTask | string,
    filter: JobFilter = {},
    o: TxOption = {},
  ): Promise<number> {
    return bulk(this.statements, o.tx ?? this.driver, 'cancel', taskName(task), filter);
  }

  /** Deletes jobs (live and archived) in the given states matching the filter; returns how many. */
  async deleteJobs(task: AnyTask | string, filter: JobFilter, o: TxOption = {}): Promise<number> {
    return bulk(this.statements, o.tx ?? this.driver, 'delete', taskName(task), filter);
  }

  /** The dead-letter queue of a task: list, inspect, reschedule, purge. */
  deadLetters(task: AnyTask | string): DeadLetters {
    const name = typeof task === 'string' ? checkTaskName(task) : task.name;
    return new DeadLetters(this, name);
  }

  /**
   * Deletes archived jobs (finished, cancelled, dead and rescheduled dead
   * letters) older than `retentionMs`, in batches; returns how many.
   */
  async prune(
    task: AnyTask | string,
    options: { retentionMs: number; batchSize?: number },
  ): Promise<number> {
    const name = typeof task === 'string' ? checkTaskName(task) : task.name;
    const batch = options.batchSize ?? 1000;
    if (!Number.isInteger(batch) || batch < 1)
      throw new InvalidArgumentError('batchSize must be a positive integer');
    if (!(options.retentionMs >= 0))
      throw new InvalidArgumentError('retentionMs must be a non-negative number');
    let total = 0;
    for (;;) {
      const res = await execute<{ n: string }>(
        this.driver,
        `SELECT ${this.statements.t}.prune($1::text, make_interval(secs => $2::float8 / 1000), $3::integer) AS n`,
        [name, options.retentionMs, batch],
      );
      const n = Number(res.rows[0]!.n);
      total += n;
      if (n < batch) return total;
    }
  }

  // --- results, flows, history (results.ts, flows.ts, history.ts) ---------

  /** A job's state, stored result, error and progress (`<tasks>.job_result`). */
  result<R = unknown>(task: AnyTask | string, id: number, o: TxOption = {}): Promise<JobResult<R>> {
    return readResult<R>(o.tx ?? this.driver, this.statements, taskName(task), id);
  }

  /**
   * Waits until the job finished and returns its handler's return value
   * (undefined when it returned none). Throws JobFailedError (dead or
   * cancelled, with the error), JobNotFoundError or ResultTimeoutError.
   */
  waitForResult<R = unknown>(
    task: AnyTask | string,
    id: number,
    o: WaitForResultOptions = {},
  ): Promise<R | undefined> {
    return waitForResult<R>(this.driver, this.statements, taskName(task), id, o);
  }

  /** Enqueues a parent and its children atomically; the parent runs once they finished. */
  enqueueFlow(spec: FlowSpec, o: TxOption = {}): Promise<EnqueuedFlow> {
    return enqueueFlow(this, spec, o);
  }

  /** The children of a flow parent and how each ended (what the parent's ctx.childResults holds). */
  childResults(task: AnyTask | string, parentId: number, o: TxOption = {}): Promise<ChildResult[]> {
    checkId(parentId);
    return childResults(o.tx ?? this.driver, this.statements, taskName(task), parentId);
  }

  /** A job's attempts with their timings and errors (null when the job is gone). */
  history(task: AnyTask | string, id: number, o: TxOption = {}): Promise<JobAttempt[] | null> {
    checkId(id);
    return jobHistory(o.tx ?? this.driver, this.statements, taskName(task), id);
  }

  /** Deletes stored results (and finished flows' bookkeeping) older than `retentionMs`. */
  pruneResults(
    task: AnyTask | string,
    o: { retentionMs: number; batchSize?: number },
  ): Promise<number> {
    const batch = o.batchSize ?? 1000;
    if (!Number.isInteger(batch) || batch < 1)
      throw new InvalidArgumentError('batchSize must be a positive integer');
    return pruneResults(this.driver, this.statements, taskName(task), o.retentionMs, batch);
  }

  async close(): Promise<void> {
    if (this.ownsDriver) await this.driver.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

const taskName = (task: AnyTask | string): string =>
  typeof task === 'string' ? checkTaskName(task) : task.name;

const ensureKey = (task: AnyTask): string =>
  `${task.name}:${task.grouped}:${task.priority !== undefined}`;

/** A job's snapshot from its queue (or archive) message. */
function snapshot(task: string, m: Message, state: JobState, archivedAt: Date | null): JobSnapshot {
  return {
    id: m.msgId,
    task,
    state,
    input: m.message,
    headers: m.headers ?? {},
    attempts: m.readCount,
    enqueuedAt: m.enqueuedAt,
    runAt: m.visibleAt,
    archivedAt,
    progress: m.headers?.[H.progress],
  };
}
