// pgferry/testing: helpers for your own tests (what graphile-worker users get
// from runTaskListOnce, River from rivertest, Oban from Oban.Testing).
import { silentLogger, type Logger } from '../logger.js';
import { toMessage, type Headers } from '../queue/index.js';
import type { TaskClient } from '../tasks/client.js';
import { JobTimeoutError } from '../tasks/errors.js';
import type { AnyTask, JobInfo, Task } from '../tasks/types.js';
import { validateInput } from '../tasks/validate.js';
import type { ChildResult } from '../tasks/flows.js';
import { inlineFeatures } from '../tasks/job-features.js';
import { Worker, type DrainSummary, type WorkerOptions } from '../tasks/worker.js';

export interface RunTaskOptions {
  /** Attempt number the handler sees. Default 1. */
  attempt?: number;
  headers?: Headers;
  /** Aborts the handler's signal (e.g. to test cancellation). */
  signal?: AbortSignal;
  logger?: Logger;
  /** What ctx.childResults holds (a flow parent's children). Default []. */
  childResults?: ChildResult[];
  /** Called with each ctx.progress value. */
  onProgress?: (value: unknown) => void;
}

/**
 * Runs a task's handler inline, without a database: the input is validated
 * with the task's schema first (TaskValidationError, as enqueue would
 * throw), the handler gets an AbortSignal that fires at the task's
 * timeoutMs, and its return value or error comes back to you.
 */
export async function runTask<In, Out>(
  task: Task<In, Out>,
  input: In,
  options: RunTaskOptions = {},
): Promise<unknown> {
  // As enqueue: refuse what the schema refuses. Then, as the worker: the
  // input after its JSON round trip through the database, validated again.
  await validateInput<Out>(task, input);
  const stored = await validateInput<Out>(task, JSON.parse(JSON.stringify(input)) as unknown);
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(
    () => controller.abort(new JobTimeoutError(task.name, task.timeoutMs)),
    task.timeoutMs,
  );
  const job: JobInfo = {
    id: 0,
    task: task.name,
    attempt: options.attempt ?? 1,
    maxAttempts: task.maxRetries + 1,
    enqueuedAt: new Date(),
    group: null,
    priority: task.priority ?? 0,
    headers: options.headers ?? {},
  };
  try {
    return await task.handler(stored, {
      signal: controller.signal,
      job,
      logger: options.logger ?? silentLogger,
      ...inlineFeatures(options),
    });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

export type DrainOptions = Omit<WorkerOptions, 'listen' | 'handleSignals' | 'cron' | 'prune'>;

/**
 * Runs every job of `tasks` that is runnable now — including retries that
 * become due while it runs — then returns. Nothing keeps running after it
 * resolves. Delayed jobs and retries scheduled later are left queued.
 */
export function drainTasks(options: DrainOptions): Promise<DrainSummary> {
  const w = new Worker({
    ...options,
    listen: false,
    handleSignals: false,
    cron: false,
    prune: null,
  });
  return w.runUntilIdle();
}

export interface QueuedJob {
  id: number;
  input: unknown;
  headers: Headers;
  attempts: number;
  runAt: Date;
}

/** Jobs of a task still in its queue (waiting, scheduled or running), oldest first: for "was it enqueued?" assertions. */
export async function queuedJobs(client: TaskClient, task: AnyTask | string): Promise<QueuedJob[]> {
  const name = typeof task === 'string' ? task : task.name;
  const rows = await client.statements.queue.records.list(client.driver, name);
  return rows.map((r) => {
    const m = toMessage(r);
    return {
      id: m.msgId,
      input: m.message,
      headers: m.headers ?? {},
      attempts: m.readCount,
      runAt: m.visibleAt,
    };
  });
}

export type { DrainSummary };
