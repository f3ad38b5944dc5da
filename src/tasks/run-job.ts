import type { Logger } from '../logger.js';
import type { JobMessage } from './lease.js';
import { traceProcess, tracingEnabled } from '../telemetry/tracing.js';
import {
  AttemptsExhaustedError,
  JobCancelledError,
  JobTimeoutError,
  TaskValidationError,
  WorkerShutdownError,
} from './errors.js';
import { H } from './headers.js';
import type { AnyTask, JobContext, JobInfo } from './types.js';
import { validateInput } from './validate.js';
import { JobRun, noFeatures, type JobFeatures } from './job-features.js';
import { encodeResult } from './results.js';

/** How one attempt ended. */
export type Outcome =
  /** result: the handler's return value as JSON (null: undefined, nothing to store); inTx: ctx.complete(tx) finished it. */
  | { kind: 'success'; result: string | null; inTx: boolean }
  | { kind: 'retry'; error: unknown }
  | { kind: 'dead'; error: unknown }
  | { kind: 'cancelled' }
  | { kind: 'shutdown' };

export function jobInfo(task: AnyTask, m: JobMessage): JobInfo {
  const h = m.headers ?? {};
  const group = h[H.group];
  const prio = h[H.priority];
  return {
    id: m.msgId,
    task: task.name,
    attempt: m.readCount,
    maxAttempts: task.maxRetries + 1,
    enqueuedAt: m.enqueuedAt,
    group: typeof group === 'string' ? group : group == null ? null : String(group),
    priority: typeof prio === 'number' ? prio : Number(prio ?? task.priority ?? 0) || 0,
    headers: h,
  };
}

/**
 * A job's abort (timeout, cancel, shutdown). The handler's AbortSignal is
 * made only when the handler reads `ctx.signal`: most handlers never do,
 * and an AbortController per job is a measurable share of a no-op job's cost.
 */
export class JobAbort {
  aborted = false;
  reason: unknown = undefined;
  private controller: AbortController | undefined;
  /** The attempt waiting for the handler or an abort, whichever comes first. */
  onAbort: (() => void) | undefined;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    this.onAbort?.();
  }
}

/**
 * A handler's context. A class, not an object literal: a literal with a
 * getter (`signal`, made on first read) is built through V8's slow path,
 * ~0.3-0.5 us per job against ~0.02 us for a class (measured in isolation).
 * `signal` lives on the prototype (spreading a context leaves it out).
 */
class JobCtx implements JobContext {
  readonly progress: JobContext['progress'];
  readonly complete: JobContext['complete'];
  readonly childResults: JobContext['childResults'];
  readonly #abort: JobAbort;

  constructor(
    abort: JobAbort,
    readonly job: JobInfo,
    readonly logger: Logger,
    features: JobFeatures,
  ) {
    this.#abort = abort;
    this.progress = features.progress;
    this.complete = features.complete;
    this.childResults = features.childResults;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }
}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  v !== null &&
  (typeof v === 'object' || typeof v === 'function') &&
  typeof (v as { then?: unknown }).then === 'function';

function timeout(abort: JobAbort, task: AnyTask): void {
  abort.abort(new JobTimeoutError(task.name, task.timeoutMs));
}

/**
 * Runs one attempt: validates the input, calls the handler with an
 * AbortSignal, and classifies the result. A timeout aborts the signal and
 * fails the attempt; the handler then gets `settleMs` to return (its lease
 * still covers that time, so no other worker can have the job meanwhile);
 * whatever it returns after the abort is discarded.
 *
 * Per job this is the worker's hottest path: a task without a schema skips
 * validation's promise, a handler that returns at once (not a promise) is
 * classified without one, and the tracing wrapper only runs when tracing
 * is on (allocations per job showed as garbage collection, 13–22 % of a
 * no-op job's Node time).
 */
export async function runAttempt(
  task: AnyTask,
  m: JobMessage,
  job: JobInfo,
  abort: JobAbort,
  settleMs: number,
  logger: Logger,
  features: JobRun | JobFeatures = noFeatures,
): Promise<Outcome> {
  return attempt(task, m, job, abort, settleMs, logger, features);
}

/**
 * runAttempt without a promise when none is needed: a task without a
 * schema, not a flow parent, whose handler returned a plain value (or
 * threw) and reported no progress still being written gets its outcome at
 * once. The worker then records it in the same tick (execution.ts); a
 * no-op job's promises and their microtask turns were a measurable share
 * of its Node time.
 */
export function attempt(
  task: AnyTask,
  m: JobMessage,
  job: JobInfo,
  abort: JobAbort,
  settleMs: number,
  logger: Logger,
  features: JobRun | JobFeatures = noFeatures,
): Outcome | Promise<Outcome> {
  if (job.attempt > job.maxAttempts)
    return { kind: 'dead', error: new AttemptsExhaustedError(task.name, job.attempt) };
  const run = features instanceof JobRun ? features : undefined;
  if (task.schema !== undefined || run?.isFlowParent)
    return attemptAsync(task, m, job, abort, settleMs, logger, features);
  const started = runHandler(task, m.message, job, abort, settleMs, logger, features);
  if (isThenable(started) || run === undefined)
    return isThenable(started) && run ? settleRun(run, started) : started;
  const settling = run.settle();
  if (settling) return settling.then(() => ranInTx(run, started));
  return ranInTx(run, started);
}

const ranInTx = (run: JobRun, outcome: Outcome): Outcome =>
  outcome.kind === 'success' && run.completedInTx
    ? { kind: 'success', result: null, inTx: true }
    : outcome;

async function settleRun(run: JobRun, started: Promise<Outcome>): Promise<Outcome> {
  const outcome = await started;
  const settling = run.settle();
  if (settling) await settling;
  return ranInTx(run, outcome);
}

/** The attempt of a task with a schema or of a flow parent: validation and the children's outcomes first. */
async function attemptAsync(
  task: AnyTask,
  m: JobMessage,
  job: JobInfo,
  abort: JobAbort,
  settleMs: number,
  logger: Logger,
  features: JobRun | JobFeatures,
): Promise<Outcome> {
  let input: unknown = m.message;
  if (task.schema !== undefined) {
    try {
      input = await validateInput(task, m.message);
    } catch (err) {
      return { kind: 'dead', error: err };
    }
  }
  const run = features instanceof JobRun ? features : undefined;
  if (run?.isFlowParent) {
    try {
      await run.load();
    } catch (err) {
      return { kind: 'retry', error: err };
    }
  }
  const started = runHandler(task, input, job, abort, settleMs, logger, features);
  const outcome = isThenable(started) ? await started : started;
  if (!run) return outcome;
  const settling = run.settle();
  if (settling) await settling;
  return ranInTx(run, outcome);
}

/** The handler's outcome: at once when it returned a plain value or threw, else a promise. */
function runHandler(
  task: AnyTask,
  input: unknown,
  job: JobInfo,
  abort: JobAbort,
  settleMs: number,
  logger: Logger,
  features: JobFeatures,
): Outcome | Promise<Outcome> {
  const ctx = new JobCtx(abort, job, logger, features);
  let returned: unknown;
  try {
    returned = tracingEnabled()
      ? traceProcess(job, () => task.handler(input, ctx))
      : task.handler(input, ctx);
  } catch (error) {
    if (!abort.aborted) return classify(task, job, error);
    returned = Promise.reject(error);
  }
  // Aborted before the handler ran (a cancel during validation): the aborted path decides.
  if (!isThenable(returned) && !abort.aborted) return succeeded(returned);
  return awaitHandler(task, job, abort, settleMs, returned);
}

function succeeded(value: unknown): Outcome {
  try {
    return { kind: 'success', result: encodeResult(value), inTx: false };
  } catch (err) {
    // A result that cannot be stored (too large, not JSON): the same every time.
    return { kind: 'dead', error: err };
  }
}

/** An asynchronous handler: its settlement or an abort (timeout, cancel, shutdown), whichever comes first. */
async function awaitHandler(
  task: AnyTask,
  job: JobInfo,
  abort: JobAbort,
  settleMs: number,
  returned: unknown,
): Promise<Outcome> {
  const timer = setTimeout(timeout, task.timeoutMs, abort, task);
  try {
    // No abort listener per job: the abort resolves this wait through onAbort.
    const first = abort.aborted
      ? null
      : await new Promise<Settled | null>((resolve) => {
          abort.onAbort = () => resolve(null);
          (returned as PromiseLike<unknown>).then(
            (value) => resolve({ ok: true, value }),
            (error: unknown) => resolve({ ok: false, error }),
          );
        });
    abort.onAbort = undefined;
    if (first && !abort.aborted)
      return first.ok ? succeeded(first.value) : classify(task, job, first.error);
    // Aborted: give the handler a moment to stop, then fail the attempt.
    let settleTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.resolve(returned).then(noop, noop),
      new Promise((r) => (settleTimer = setTimeout(r, settleMs))),
    ]);
    clearTimeout(settleTimer);
    const reason: unknown = abort.reason;
    if (reason instanceof JobCancelledError) return { kind: 'cancelled' };
    if (reason instanceof WorkerShutdownError) return { kind: 'shutdown' };
    // Timeouts are always worth another attempt (retryOn filters thrown errors).
    return job.attempt < job.maxAttempts
      ? { kind: 'retry', error: reason }
      : { kind: 'dead', error: reason };
  } finally {
    clearTimeout(timer);
  }
}

const noop = (): void => undefined;

function classify(task: AnyTask, job: JobInfo, error: unknown): Outcome {
  if (error instanceof TaskValidationError) return { kind: 'dead', error };
  if (job.attempt >= job.maxAttempts || !retryable(task, error)) return { kind: 'dead', error };
  return { kind: 'retry', error };
}

function retryable(task: AnyTask, error: unknown): boolean {
  const r = task.retryOn;
  if (r === undefined) return true;
  if (typeof r === 'function') {
    try {
      return (r as (e: unknown) => boolean)(error) === true;
    } catch {
      return false;
    }
  }
  return r.some((C) => error instanceof C);
}

/** The error as stored in headers: class, name, message, stack (and code when there is one). */
export function serialiseError(error: unknown): string {
  let out: Record<string, unknown>;
  if (error instanceof Error) {
    out = {
      class: error.constructor?.name ?? 'Error',
      name: error.name,
      message: error.message,
      stack: error.stack ?? null,
    };
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') out.code = code;
    if (error instanceof TaskValidationError) out.issues = error.issues;
  } else {
    out = { class: typeof error, name: 'NonError', message: safeString(error), stack: null };
  }
  try {
    return JSON.stringify(out);
  } catch {
    return JSON.stringify({
      class: out.class,
      name: out.name,
      message: String(out.message),
      stack: null,
    });
  }
}

function safeString(v: unknown): string {
  try {
    return typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  } catch {
    return String(v);
  }
}
