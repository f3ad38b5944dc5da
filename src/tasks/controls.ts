// Runtime controls of a task queue (sql/tasks/0003_controls.sql): pause and
// resume, rate limits, group concurrency. They live in the tasks registry, so
// every worker process (and any language's fetch) obeys the same state.
import { execute, type Executor } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import { checkNoNul } from '../payload.js';
import { TaskConfigError } from './errors.js';
import type { TaskStatements } from './statements.js';
import type { AnyTask } from './types.js';

/** At most `limit` jobs start per `periodMs` (sliding window), for the task or for each rate key. */
export interface RateLimit {
  /** 1 to 10,000: the window's log holds one timestamp per start (use a shorter period for more). */
  limit: number;
  periodMs: number;
  /** Count each enqueue `rateKey` separately (jobs without one share one budget). Default false. */
  perKey?: boolean;
}

export type NormalizedRateLimit = Required<RateLimit>;

/**
 * Largest `rateLimit.limit` (configure_task refuses more too): fetch() reads
 * and rewrites the window's log of starts under the bucket's lock, so a
 * longer log slows every fetch. For more, use a shorter period.
 */
export const MAX_RATE_LIMIT = 10_000;

const posInt = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 2_147_483_647;

/** Checks the task options `rateLimit` and `groupConcurrency` (defineTask). */
export function normaliseControls(
  name: string,
  grouped: boolean,
  rateLimit: RateLimit | undefined,
  groupConcurrency: number | undefined,
): { rateLimit: NormalizedRateLimit | undefined; groupConcurrency: number } {
  if (groupConcurrency !== undefined && !posInt(groupConcurrency))
    throw new InvalidArgumentError(
      `task "${name}": groupConcurrency must be a positive integer, got ${String(groupConcurrency)}`,
    );
  if (groupConcurrency !== undefined && groupConcurrency > 1 && !grouped)
    throw new TaskConfigError(`task "${name}": groupConcurrency needs grouped: true`);
  if (rateLimit === undefined)
    return { rateLimit: undefined, groupConcurrency: groupConcurrency ?? 1 };
  if (typeof rateLimit !== 'object' || rateLimit === null || !posInt(rateLimit.limit))
    throw new InvalidArgumentError(`task "${name}": rateLimit.limit must be a positive integer`);
  if (rateLimit.limit > MAX_RATE_LIMIT)
    throw new InvalidArgumentError(
      `task "${name}": rateLimit.limit is at most ${MAX_RATE_LIMIT} per period, got ${rateLimit.limit} (use a shorter periodMs)`,
    );
  if (!posInt(rateLimit.periodMs))
    throw new InvalidArgumentError(
      `task "${name}": rateLimit.periodMs must be a positive integer (milliseconds)`,
    );
  if (rateLimit.perKey !== undefined && typeof rateLimit.perKey !== 'boolean')
    throw new InvalidArgumentError(`task "${name}": rateLimit.perKey must be a boolean`);
  return {
    rateLimit: { limit: rateLimit.limit, periodMs: rateLimit.periodMs, perKey: !!rateLimit.perKey },
    groupConcurrency: groupConcurrency ?? 1,
  };
}

/** Rate keys sit in a btree primary key (as idempotency keys do): at most 2,000 UTF-8 bytes. */
export function checkKey(what: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0)
    throw new InvalidArgumentError(`${what} must be a non-empty string`);
  checkNoNul(what, key);
  if (Buffer.byteLength(key, 'utf8') > 2000)
    throw new InvalidArgumentError(`${what} is longer than 2,000 UTF-8 bytes`);
  return key;
}

/** Writes the task's controls into the registry (`configure_task`); TaskClient.ensure does it. */
export function configureTask(st: TaskStatements, exec: Executor, task: AnyTask): Promise<unknown> {
  const r = task.rateLimit;
  return st.call(exec, 'configure_task', [
    [task.name, 'text'],
    [task.groupConcurrency, 'integer'],
    [r?.limit ?? null, 'integer'],
    [r?.periodMs ?? null, 'integer'],
    [r?.perKey ?? false, 'boolean'],
  ]);
}

/** pause(name) / resume(name): true when the state changed. */
export async function setPaused(
  st: TaskStatements,
  exec: Executor,
  name: string,
  paused: boolean,
): Promise<boolean> {
  const rows = await st.call<{ r: boolean }>(exec, paused ? 'pause' : 'resume', [[name, 'text']]);
  return rows[0]!.r;
}

/** Whether the task is paused (false for a task no worker or client has registered). */
export async function isPaused(st: TaskStatements, exec: Executor, name: string): Promise<boolean> {
  const res = await execute<{ paused: boolean }>(
    exec,
    `SELECT paused FROM ${st.t}.queues WHERE queue_name = $1`,
    [name],
  );
  return res.rows[0]?.paused === true;
}
