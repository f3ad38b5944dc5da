import { InvalidArgumentError } from '../errors.js';
import { toJson, type Headers } from '../queue/index.js';
import { TaskConfigError } from './errors.js';
import { H } from './headers.js';
import type { RunAt } from './statements.js';
import type { AnyTask, EnqueueOptions } from './types.js';
import { controlOptions } from './unique.js';
import { checkIdempotencyKey } from './validate.js';

/** One job's headers (JSON), idempotency key, run time and unique/debounce window. */
export interface JobHeaders {
  headers: string;
  key: string | undefined;
  runAt: RunAt;
  keyed: ReturnType<typeof controlOptions>;
}

/** Checks a job's enqueue options against its task and builds its headers. */
export function jobHeaders(task: AnyTask, o: Omit<EnqueueOptions, 'tx'>): JobHeaders {
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
    if (o.delayMs !== undefined) throw new InvalidArgumentError('give delayMs or runAt, not both');
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
