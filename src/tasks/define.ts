import type { StandardSchemaV1 } from '@standard-schema/spec';
import { Cron } from 'croner';
import { InvalidArgumentError } from '../errors.js';
import { checkBackoff, DEFAULT_BACKOFF } from './backoff.js';
import { normaliseControls } from './controls.js';
import { TaskConfigError } from './errors.js';
import {
  TASK_BRAND,
  type CronSchedule,
  type NormalizedSchedule,
  type Task,
  type TaskOptions,
} from './types.js';

/** Task names: they become queue names, and `<name>_dlq` must fit PGMQ's 47 characters. */
export const TASK_NAME = /^[A-Za-z0-9_]{1,43}$/;

export function checkTaskName(name: unknown): string {
  if (typeof name !== 'string' || !TASK_NAME.test(name)) {
    throw new TaskConfigError(
      `task name ${JSON.stringify(name)} is invalid: use 1 to 43 letters, digits or underscores (the dead-letter queue adds "_dlq")`,
    );
  }
  return name;
}

/**
 * Defines a task. With a Standard Schema validator the input type is
 * inferred from it (enqueue takes the schema's input, the handler gets its
 * output); without one, give the type: `defineTask<{ to: string }>({ … })`.
 */
export function defineTask<S extends StandardSchemaV1>(
  options: TaskOptions<StandardSchemaV1.InferInput<S>, StandardSchemaV1.InferOutput<S>> & {
    schema: S;
  },
): Task<StandardSchemaV1.InferInput<S>, StandardSchemaV1.InferOutput<S>>;
export function defineTask<In>(options: TaskOptions<In, In> & { schema?: undefined }): Task<In, In>;
export function defineTask<In, Out>(options: TaskOptions<In, Out>): Task<In, Out> {
  const name = checkTaskName(options.name);
  if (typeof options.handler !== 'function')
    throw new TaskConfigError(`task "${name}": handler must be a function`);
  if (
    options.schema !== undefined &&
    typeof options.schema?.['~standard']?.validate !== 'function'
  ) {
    throw new TaskConfigError(
      `task "${name}": schema must be a Standard Schema validator (zod, valibot, arktype…)`,
    );
  }
  const int = (
    what: string,
    v: number | undefined,
    min: number,
    dflt: number | undefined,
  ): number | undefined => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 2_147_483_647) {
      throw new InvalidArgumentError(
        `task "${name}": ${what} must be an integer ≥ ${min}, got ${String(v)}`,
      );
    }
    return v;
  };
  const retryOn = options.retryOn;
  if (retryOn !== undefined && typeof retryOn !== 'function' && !Array.isArray(retryOn)) {
    throw new TaskConfigError(
      `task "${name}": retryOn must be a list of error classes or a predicate`,
    );
  }
  if (
    options.onComplete !== undefined &&
    options.onComplete !== 'archive' &&
    options.onComplete !== 'delete'
  ) {
    throw new TaskConfigError(`task "${name}": onComplete must be 'archive' or 'delete'`);
  }
  const task: Task<In, Out> = {
    [TASK_BRAND]: true,
    name,
    schema: options.schema,
    handler: options.handler,
    maxRetries: int('maxRetries', options.maxRetries, 0, 3)!,
    retryOn,
    backoff: checkBackoff(options.backoff ?? DEFAULT_BACKOFF),
    timeoutMs: int('timeoutMs', options.timeoutMs, 1, 60_000)!,
    concurrencyLimit: int('concurrencyLimit', options.concurrencyLimit, 1, undefined),
    grouped: options.grouped === true,
    lifo: options.lifo === true,
    priority: int('priority', options.priority, -2_147_483_647, undefined),
    onComplete: options.onComplete ?? 'archive',
    cron: normaliseCron(name, options.cron),
    ...normaliseControls(
      name,
      options.grouped === true,
      options.rateLimit,
      options.groupConcurrency,
    ),
  };
  return Object.freeze(task);
}

function normaliseCron<In>(
  task: string,
  cron: TaskOptions<In, unknown>['cron'],
): NormalizedSchedule<In>[] {
  if (cron === undefined) return [];
  const list: readonly (string | CronSchedule<In>)[] = Array.isArray(cron)
    ? cron
    : [cron as string | CronSchedule<In>];
  const out = list.map((c) => {
    const s: CronSchedule<In> = typeof c === 'string' ? { pattern: c } : c;
    if (s.onMissed !== undefined && s.onMissed !== 'runOnce' && s.onMissed !== 'skip') {
      throw new TaskConfigError(`task "${task}": cron onMissed must be 'runOnce' or 'skip'`);
    }
    try {
      // Parses pattern and time zone now, so a typo fails at definition time.
      new Cron(s.pattern, { timezone: s.timezone, paused: true }).nextRun();
    } catch (err) {
      throw new TaskConfigError(
        `task "${task}": invalid cron schedule ${JSON.stringify(s.pattern)}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    return {
      name: s.name ?? `${task}:${s.pattern}:${s.timezone ?? 'UTC'}`,
      pattern: s.pattern,
      timezone: s.timezone,
      input: s.input,
      onMissed: s.onMissed ?? 'runOnce',
    };
  });
  const names = new Set(out.map((s) => s.name));
  if (names.size !== out.length)
    throw new TaskConfigError(`task "${task}": two cron schedules have the same name`);
  return out;
}
