// Bulk operations by filter (sql/tasks/0003_controls.sql: bulk_retry,
// bulk_cancel, bulk_delete): one statement each, counts returned.
import type { Executor } from '../driver/types.js';
import { toJson } from '../queue/index.js';
import type { JobState } from './client.js';
import { TaskConfigError } from './errors.js';
import type { TaskStatements } from './statements.js';

/** Which jobs a bulk operation touches: all conditions must hold. */
export interface JobFilter {
  /** Job states (one or a list); each operation has its own allowed states and default. */
  state?: JobState | readonly JobState[];
  /** JSON containment on the job's input: `{ customerId: 42 }` matches inputs with that field. */
  payload?: Record<string, unknown>;
  /** JSON containment on the job's headers. */
  headers?: Record<string, unknown>;
}

export type BulkOperation = 'retry' | 'cancel' | 'delete';

const ALLOWED: Record<BulkOperation, readonly JobState[]> = {
  retry: ['dead', 'retrying'],
  cancel: ['queued', 'scheduled', 'running', 'retrying'],
  delete: ['queued', 'scheduled', 'running', 'retrying', 'completed', 'cancelled', 'dead'],
};
const DEFAULT: Record<BulkOperation, readonly JobState[] | undefined> = {
  retry: ['dead', 'retrying'],
  cancel: ['queued', 'scheduled', 'retrying'],
  delete: undefined, // must be given
};

const plainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks a filter against an operation; throws TaskConfigError for a bad one. */
export function checkFilter(
  op: BulkOperation,
  filter: JobFilter,
): { states: string[]; payload: string | null; headers: string | null } {
  if (!plainObject(filter)) throw new TaskConfigError(`${op}Jobs: the filter must be an object`);
  for (const k of Object.keys(filter))
    if (k !== 'state' && k !== 'payload' && k !== 'headers')
      throw new TaskConfigError(`${op}Jobs: unknown filter field "${k}" (state, payload, headers)`);
  const state = (filter as JobFilter).state;
  const given: readonly JobState[] | undefined =
    state === undefined ? undefined : typeof state === 'string' ? [state] : state;
  if (given !== undefined && !Array.isArray(given))
    throw new TaskConfigError(`${op}Jobs: state must be a job state or a list of them`);
  const states = given ?? DEFAULT[op];
  if (!states)
    throw new TaskConfigError(
      `${op}Jobs: give the states to delete (e.g. { state: ['completed', 'cancelled'] })`,
    );
  if (states.length === 0) throw new TaskConfigError(`${op}Jobs: state must not be empty`);
  for (const s of states)
    if (!ALLOWED[op].includes(s))
      throw new TaskConfigError(
        `${op}Jobs: state ${JSON.stringify(s)} is not one of ${ALLOWED[op].join(', ')}`,
      );
  for (const f of ['payload', 'headers'] as const)
    if (filter[f] !== undefined && !plainObject(filter[f]))
      throw new TaskConfigError(`${op}Jobs: ${f} must be a JSON object (matched by containment)`);
  return {
    states: [...new Set(states)],
    payload: filter.payload === undefined ? null : toJson('payload', filter.payload),
    headers: filter.headers === undefined ? null : toJson('headers', filter.headers),
  };
}

/** Runs bulk_<op>; returns how many jobs it changed. */
export async function bulk(
  st: TaskStatements,
  exec: Executor,
  op: BulkOperation,
  task: string,
  filter: JobFilter,
): Promise<number> {
  const f = checkFilter(op, filter);
  const rows = await st.call<{ r: string }>(exec, `bulk_${op}`, [
    [task, 'text'],
    [f.states, 'text[]'],
    [f.payload, 'jsonb'],
    [f.headers, 'jsonb'],
  ]);
  return Number(rows[0]!.r);
}
