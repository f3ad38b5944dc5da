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
import { noFeatures, type JobFeatures } from './job-features.js';
import { RunHolder } from './run-holder.js';
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
 * getter is built through V8's slow path (~0.3-0.5 us per job against ~0.02
 * us for a class, measured in isolation). `signal` (an AbortController made
 * on first read) and the JobRun behind progress/complete/childResults (made
 * on first read, run-holder.ts) are getters on the prototype: reading or
 * destructuring them works as before; spreading a context leaves them out.
 */
class JobCtx implements JobContext {
  readonly #abort: JobAbort;
  readonly #features: RunHolder | JobFeatures;

  constructor(
    abort: JobAbort,
    readonly job: JobInfo,
    readonly logger: Logger,
    features: RunHolder | JobFeatures,
  ) {
    this.#abort = abort;
    this.#features = features;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get progress(): JobContext['progress'] {
    return this.#use().progress;
  }

  get complete(): JobContext['complete'] {
    return this.#use().complete;
  }

  get childResults(): JobContext['childResults'] {
    return this.#use().childResults;
  }

  #use(): JobFeatures {
    const f = this.#features;
    return f instanceof RunHolder ? f.get() : f;
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
 * Without a promise when none is needed: a task without a schema, not a
 * flow parent, whose handler returned a plain value (or threw) and has no
 * progress still being written gets its outcome at once, and the worker
 * records it in the same tick (execution.ts). Per job this is the worker's
 * hottest path: the tracing wrapper only runs when tracing is on, and the
 * job's JobRun is made only when the handler uses it (run-holder.ts);
 * promises, microtask turns and allocations per job were a measurable
 * share of a no-op job's Node time.
 */
export function attempt(
  task: AnyTask,
  m: JobMessage,
  job: JobInfo,
  abort: JobAbort,
  settleMs: number,
  logger: Logger,
  features: RunHolder | JobFeatures = noFeatures,
): Outcome | Promise<Outcome> {
  if (job.attempt > job.maxAttempts)
    return { kind: 'dead', error: new AttemptsExhaustedError(task.name, job.attempt) };
  const holder = features instanceof RunHolder ? features : undefined;
  if (task.schema !== undefined || holder?.isFlowParent)
    return attemptAsync(task, m, job, abort, settleMs, logger, features);
  const started = runHandler(task, m.message, job, abort, settleMs, logger, features);
  if (isThenable(started)) return holder ? settleRun(holder, started) : started;
  const settling = holder?.current?.settle();
  if (settling) return settling.then(() => ranInTx(holder!, started));
  return holder ? ranInTx(holder, started) : started;
}

/** The attempt is over; ctx.complete(tx) may have finished the job (the worker must not complete it again). */
function ranInTx(holder: RunHolder, outcome: Outcome): Outcome {
  holder.ended = true;
  return outcome.kind === 'success' && holder.current?.completedInTx
    ? { kind: 'success', result: null, inTx: true }
    : outcome;
}

/** After the handler: the last progress value written, then the outcome. */
async function settleRun(holder: RunHolder, started: Outcome | Promise<Outcome>): Promise<Outcome> {
  const outcome = await started;
  const settling = holder.current?.settle();
  if (settling) await settling;
  return ranInTx(holder, outcome);
}

/** The attempt of a task with a schema or of a flow parent: validation and the children's outcomes first. */
async function attemptAsync(
  task: AnyTask,
  m: JobMessage,
  job: JobInfo,
  abort: JobAbort,
  settleMs: number,
  logger: Logger,
  features: RunHolder | JobFeatures,
): Promise<Outcome> {
  let input: unknown = m.message;
  if (task.schema !== undefined) {
    try {
      input = await validateInput(task, m.message);
    } catch (err) {
      return { kind: 'dead', error: err };
    }
  }
  const holder = features instanceof RunHolder ? features : undefined;
  if (holder?.isFlowParent) {
    try {
      await holder.get().load();
    } catch (err) {
      return { kind: 'retry', error: err };
    }
  }
  const started = runHandler(task, input, job, abort, settleMs, logger, features);
  return holder ? settleRun(holder, started) : started;
}

/** The handler's outcome: at once when it returned a plain value or threw, else a promise. */
function runHandler(
  task: AnyTask,
  input: unknown,
  job: JobInfo,
  abort: JobAbort,
  settleMs: number,
  logger: Logger,
  features: RunHolder | JobFeatures,
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

/** The outcome of a handler that returned nothing to store (shared: outcomes are never changed). */
const SUCCEEDED: Outcome = Object.freeze({ kind: 'success', result: null, inTx: false });

function succeeded(value: unknown): Outcome {
  if (value === undefined) return SUCCEEDED;
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
