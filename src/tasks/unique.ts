// Enqueue options of the runtime controls: a rate key, and unique or
// debounced enqueues over a time window (sql/tasks/0003_controls.sql:
// enqueue_unique, enqueue_debounced; keys kept in job_keys until they expire).
import { execute, type Executor } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import type { Headers } from '../queue/index.js';
import { checkKey } from './controls.js';
import { TaskConfigError } from './errors.js';
import type { RunAt, TaskStatements } from './statements.js';
import type { AnyTask } from './types.js';

/** A key and how long it holds, in milliseconds. */
export interface KeyWindow {
  key: string;
  windowMs: number;
}

export interface ControlEnqueueOptions {
  /** The job's rate-limit key (tasks with `rateLimit.perKey`), e.g. a customer or an API host. */
  rateKey?: string;
  /**
   * A second enqueue with this key within `windowMs` of the first returns
   * the first job (`duplicate: true`), even if it has already finished.
   */
  unique?: KeyWindow;
  /**
   * Trailing-edge debounce: the job runs `windowMs` after the last enqueue
   * with this key; an enqueue within the window while the job has not
   * started replaces its input and pushes its run time (`duplicate: true`).
   */
  debounce?: KeyWindow;
}

export const RATE_KEY_HEADER = 'x-pgferry-rate-key';

type Keyed = { kind: 'unique' | 'debounce'; key: string; windowMs: number };

function window(what: string, w: unknown): Keyed['windowMs'] {
  const v = (w as KeyWindow | null)?.windowMs;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 2_147_483_647)
    throw new InvalidArgumentError(`${what}.windowMs must be a positive integer (milliseconds)`);
  return v;
}

/**
 * Checks the control options of one enqueue, adds the rate-key header, and
 * says whether it is a unique or debounced enqueue.
 */
export function controlOptions(
  task: AnyTask,
  o: ControlEnqueueOptions & { delayMs?: number; runAt?: Date; idempotencyKey?: string },
  h: Headers,
): Keyed | undefined {
  if (o.rateKey !== undefined) {
    if (!task.rateLimit?.perKey)
      throw new TaskConfigError(
        `task "${task.name}" has no per-key rate limit; define it with rateLimit: { …, perKey: true } to use rateKey`,
      );
    h[RATE_KEY_HEADER] = checkKey('rateKey', o.rateKey);
  }
  if (o.unique === undefined && o.debounce === undefined) return undefined;
  if (o.unique !== undefined && o.debounce !== undefined)
    throw new TaskConfigError('give unique or debounce, not both');
  if (o.idempotencyKey !== undefined)
    throw new TaskConfigError(
      `give idempotencyKey or ${o.unique ? 'unique' : 'debounce'}, not both`,
    );
  if (o.debounce !== undefined && (o.delayMs !== undefined || o.runAt !== undefined))
    throw new TaskConfigError(
      'a debounced job runs windowMs after the last enqueue: no delayMs or runAt',
    );
  const kind = o.unique !== undefined ? 'unique' : 'debounce';
  const w = o.unique ?? o.debounce;
  return { kind, key: checkKey(`${kind}.key`, w?.key), windowMs: window(kind, w) };
}

/** enqueueBatch inserts in one statement: unique and debounced jobs go through enqueue. */
export function refuseInBatch(o: ControlEnqueueOptions | undefined, i: number): void {
  if (o?.unique !== undefined || o?.debounce !== undefined)
    throw new TaskConfigError(
      `jobs[${i}]: unique and debounce are for enqueue(), not enqueueBatch()`,
    );
}

/** Runs enqueue_unique / enqueue_debounced. */
export async function enqueueKeyed(
  st: TaskStatements,
  exec: Executor,
  queue: string,
  body: string,
  headers: string,
  runAt: RunAt,
  k: Keyed,
): Promise<{ id: number; duplicate: boolean }> {
  const res =
    k.kind === 'unique'
      ? await execute<{ msg_id: string; duplicate: boolean }>(
          exec,
          `SELECT * FROM ${st.t}.enqueue_unique($1::text, $2::jsonb, $3::text, $4::integer, $5::jsonb,
             COALESCE($6::timestamptz, clock_timestamp() + make_interval(secs => $7::float8 / 1000)))`,
          [queue, body, k.key, k.windowMs, headers, runAt.at, runAt.delayMs],
        )
      : await execute<{ msg_id: string; duplicate: boolean }>(
          exec,
          `SELECT * FROM ${st.t}.enqueue_debounced($1::text, $2::jsonb, $3::text, $4::integer, $5::jsonb)`,
          [queue, body, k.key, k.windowMs, headers],
        );
  const row = res.rows[0]!;
  return { id: Number(row.msg_id), duplicate: row.duplicate };
}
