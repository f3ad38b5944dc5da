import type { StandardSchemaV1 } from '@standard-schema/spec';
import { TaskValidationError } from './errors.js';
import { InvalidArgumentError } from '../errors.js';
import { checkNoNul } from '../payload.js';
import type { AnyTask } from './types.js';

/** Runs the task's validator (sync or async); returns the output or throws TaskValidationError. */
export async function validateInput<Out>(task: AnyTask, input: unknown): Promise<Out> {
  const schema = task.schema as StandardSchemaV1<unknown, Out> | undefined;
  if (!schema) return input as Out;
  let result = schema['~standard'].validate(input);
  if (result instanceof Promise) result = await result;
  if (result.issues) {
    throw new TaskValidationError(
      task.name,
      result.issues.map((i) => ({ message: i.message, ...(i.path ? { path: [...i.path] } : {}) })),
    );
  }
  return result.value;
}

/**
 * Idempotency keys live in a unique btree index, whose entries PostgreSQL
 * caps at ~2.7 kB (an over-long key failed with 54000 after the job was
 * built). 2,000 UTF-8 bytes leaves room for the index tuple's own overhead.
 */
export const MAX_IDEMPOTENCY_KEY_BYTES = 2000;

/** Checks an idempotency key up front: a non-empty string, no NUL, at most 2,000 bytes. */
export function checkIdempotencyKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new InvalidArgumentError('idempotencyKey must be a non-empty string');
  }
  checkNoNul('idempotencyKey', key);
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_IDEMPOTENCY_KEY_BYTES) {
    throw new InvalidArgumentError(
      `idempotencyKey is ${bytes} bytes in UTF-8; the maximum is ${MAX_IDEMPOTENCY_KEY_BYTES} (it is kept in a btree index)`,
    );
  }
  return key;
}
