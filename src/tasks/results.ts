import type { Executor } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import { toJson } from '../queue/index.js';
import type { JobState } from './client.js';
import {
  JobFailedError,
  JobNotFoundError,
  ResultTimeoutError,
  ResultTooLargeError,
  type StoredError,
} from './outcome-errors.js';
import type { TaskStatements } from './statements.js';

/** Largest handler result (and progress value) stored, in bytes of JSON: 1 MiB. */
export const MAX_RESULT_BYTES = 1_048_576;

/** A job's outcome as `<tasks>.job_result` reports it. */
export interface JobResult<R = unknown> {
  /** Where the job is, or 'unknown' (never enqueued, or pruned). */
  state: JobState | 'unknown';
  /** The handler's return value (undefined: none stored, or not finished). */
  result: R | undefined;
  /** Dead: what it died of; retrying: the last attempt's error; else null. */
  error: StoredError | null;
  /** The latest progress the handler reported (undefined: none). */
  progress: unknown;
}

export interface WaitForResultOptions {
  /** Give up after this long (ResultTimeoutError). Default 30,000. */
  timeoutMs?: number;
  /**
   * The longest pause between looks. Default 200. The first looks come
   * sooner (5 ms after the first, then doubling up to this: pollDelay), so
   * a job that finishes in a few milliseconds is seen in a few milliseconds.
   */
  pollIntervalMs?: number;
}

/**
 * The result column wrapped in a one-element array, so that a stored JSON
 * null (the handler returned null) differs from no result (SQL NULL).
 */
export const WRAPPED_RESULT = `CASE WHEN result IS NULL THEN NULL ELSE jsonb_build_array(result) END AS result`;

export const unwrapResult = (v: unknown): unknown => (Array.isArray(v) ? v[0] : undefined);

interface ResultRow {
  state: string;
  result: unknown;
  error: StoredError | null;
  progress: unknown;
}

/**
 * JSON text of a handler's result, or null when there is nothing to store
 * (undefined). Refuses what JSON cannot hold (InvalidArgumentError) and
 * results over `maxBytes` (ResultTooLargeError).
 */
export function encodeResult(
  value: unknown,
  maxBytes = MAX_RESULT_BYTES,
  what = 'the result',
): string | null {
  if (value === undefined) return null;
  const text = toJson(what, value);
  const bytes = text.length <= maxBytes / 3 ? text.length : Buffer.byteLength(text);
  if (bytes > maxBytes) throw new ResultTooLargeError(what, bytes, maxBytes);
  return text;
}

export async function readResult<R>(
  exec: Executor,
  st: TaskStatements,
  task: string,
  id: number,
): Promise<JobResult<R>> {
  checkId(id);
  const rows = await st.call<ResultRow>(
    exec,
    'job_result',
    [
      [task, 'text'],
      [id, 'bigint'],
    ],
    { select: `state, ${WRAPPED_RESULT}, error, progress` },
  );
  const r = rows[0]!;
  return {
    state: r.state as JobResult['state'],
    result: unwrapResult(r.result) as R | undefined,
    error: r.error ?? null,
    progress: r.progress ?? undefined,
  };
}

/** The first pause between looks at a job's result (ms); waitForResult doubles it up to pollIntervalMs. */
export const FIRST_POLL_MS = 5;

/** The pause before look `i + 1` (i ≥ 0): FIRST_POLL_MS doubling, at most `every`. */
export function pollDelay(i: number, every: number): number {
  return Math.min(every, FIRST_POLL_MS * 2 ** Math.min(i, 30));
}

/**
 * Polls job_result until the job completed (its result), died or was
 * cancelled (JobFailedError with its error), is unknown (JobNotFoundError),
 * or the deadline passed (ResultTimeoutError).
 */
export async function waitForResult<R>(
  exec: Executor,
  st: TaskStatements,
  task: string,
  id: number,
  o: WaitForResultOptions = {},
): Promise<R | undefined> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const every = o.pollIntervalMs ?? 200;
  if (!(timeoutMs >= 0) || !Number.isFinite(timeoutMs))
    throw new InvalidArgumentError(
      `timeoutMs must be a non-negative number, got ${String(timeoutMs)}`,
    );
  if (!(every >= 1) || !Number.isFinite(every))
    throw new InvalidArgumentError(`pollIntervalMs must be ≥ 1, got ${String(every)}`);
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const r = await readResult<R>(exec, st, task, id);
    if (r.state === 'completed') return r.result;
    if (r.state === 'dead' || r.state === 'cancelled')
      throw new JobFailedError(task, id, r.state, r.error);
    if (r.state === 'unknown') throw new JobNotFoundError(task, id);
    const left = deadline - Date.now();
    if (left <= 0) throw new ResultTimeoutError(task, id, timeoutMs, r.state);
    await new Promise((res) => setTimeout(res, Math.min(pollDelay(i, every), left)));
  }
}

/** Deletes stored results of `task` older than `retentionMs`, in batches; returns how many. */
export async function pruneResults(
  exec: Executor,
  st: TaskStatements,
  task: string,
  retentionMs: number,
  batchSize: number,
): Promise<number> {
  if (!(retentionMs >= 0))
    throw new InvalidArgumentError('resultRetentionMs must be a non-negative number');
  let total = 0;
  for (;;) {
    const rows = await st.call<{ r: string }>(
      exec,
      'prune_results',
      [
        [task, 'text'],
        [`${retentionMs} milliseconds`, 'interval'],
        [batchSize, 'integer'],
      ],
      { select: 'r' },
    );
    const n = Number(rows[0]!.r);
    total += n;
    if (n < batchSize) return total;
  }
}

export function checkId(id: number): void {
  if (!Number.isSafeInteger(id) || id < 1)
    throw new InvalidArgumentError(`job id must be a positive integer, got ${String(id)}`);
}
