import type { StandardSchemaV1 } from '@standard-schema/spec';
import { TaskValidationError } from './errors.js';
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
