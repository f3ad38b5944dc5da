import type { Executor } from '../driver/types.js';
import type { TxOption } from '../driver/tx-option.js';
import { InvalidArgumentError } from '../errors.js';
import { toJson } from '../queue/index.js';
import type { TaskClient } from './client.js';
import { TaskConfigError } from './errors.js';
import type { StoredError } from './outcome-errors.js';
import { WRAPPED_RESULT, unwrapResult } from './results.js';
import type { TaskStatements } from './statements.js';
import type { AnyTask, EnqueuedJob, EnqueueOptions, Task } from './types.js';
import { validateInput } from './validate.js';

/**
 * One job of a flow. Idempotency keys, unique and debounce windows are
 * refused (a deduplicated job would belong to another flow).
 */
export interface FlowJob<In = unknown> {
  task: Task<In, unknown> | AnyTask;
  input: In;
  /** The parent takes no delayMs/runAt (it is held until its children finish). */
  options?: Omit<EnqueueOptions, 'tx' | 'idempotencyKey'>;
}

/** What happens to the parent when a child dies or is cancelled. */
export type ChildFailurePolicy =
  /** The parent is dead-lettered at once (ChildJobFailedError, naming the child). Default. */
  | 'fail'
  /** The parent runs anyway once every child has finished, and sees how each ended. */
  | 'continue';

export interface FlowSpec {
  parent: FlowJob;
  /** At least one. Their tasks may differ from the parent's and from each other. */
  children: readonly FlowJob[];
  onChildFailure?: ChildFailurePolicy;
}

export interface EnqueuedFlow {
  parent: EnqueuedJob;
  children: EnqueuedJob[];
}

/** How one child of a flow ended, as its parent's handler sees it (`ctx.childResults`). */
export interface ChildResult<R = unknown> {
  task: string;
  id: number;
  /** null: not finished (only seen outside the parent's handler). */
  state: 'completed' | 'dead' | 'cancelled' | null;
  /** The child's handler's return value (undefined when it returned none). */
  result: R | undefined;
  /** What a dead child died of. */
  error: StoredError | null;
}

/** Validates every job first, then enqueues the whole flow in one statement (`<tasks>.enqueue_flow`). */
export async function enqueueFlow(
  client: TaskClient,
  spec: FlowSpec,
  options: TxOption = {},
): Promise<EnqueuedFlow> {
  if (typeof spec !== 'object' || spec === null || typeof spec.parent !== 'object')
    throw new InvalidArgumentError('enqueueFlow needs { parent, children }');
  if (!Array.isArray(spec.children) || spec.children.length === 0)
    throw new InvalidArgumentError('enqueueFlow needs at least one child');
  const policy = spec.onChildFailure ?? 'fail';
  if (policy !== 'fail' && policy !== 'continue')
    throw new InvalidArgumentError(
      `onChildFailure must be 'fail' or 'continue', got ${String(policy)}`,
    );
  const p = spec.parent.options ?? {};
  if (p.delayMs !== undefined || p.runAt !== undefined)
    throw new TaskConfigError('a flow parent runs when its children finish: no delayMs or runAt');
  const encode = async (j: FlowJob, what: string) => {
    if ((j.options as EnqueueOptions | undefined)?.idempotencyKey !== undefined)
      throw new TaskConfigError(`${what}: a flow's jobs cannot have idempotency keys`);
    const task = j.task as AnyTask;
    await validateInput(task, j.input);
    const h = client.jobHeaders(task, j.options ?? {});
    if (h.keyed) throw new TaskConfigError(`${what}: a flow's jobs cannot be unique or debounced`);
    return { task, input: toJson(`${what}.input`, j.input), ...h };
  };
  const parent = await encode(spec.parent, 'parent');
  const children = [];
  for (const [i, c] of spec.children.entries()) children.push(await encode(c, `children[${i}]`));
  await client.ensure([parent.task, ...children.map((c) => c.task)]);
  const body = `[${children
    .map(
      (c) =>
        `{"queue":${JSON.stringify(c.task.name)},"input":${c.input},"headers":${c.headers}` +
        (c.runAt.at !== null
          ? `,"run_at":${JSON.stringify(c.runAt.at.toISOString())}`
          : `,"delay_ms":${c.runAt.delayMs}`) +
        '}',
    )
    .join(',')}]`;
  const rows = await client.statements.call<{
    queue_name: string;
    msg_id: string;
    position: number;
  }>(options.tx ?? client.driver, 'enqueue_flow', [
    [parent.task.name, 'text'],
    [parent.input, 'jsonb'],
    [parent.headers, 'jsonb'],
    [body, 'jsonb'],
    [policy, 'text'],
  ]);
  const jobs = rows
    .sort((a, b) => a.position - b.position)
    .map((r) => ({ id: Number(r.msg_id), task: r.queue_name, duplicate: false }));
  return { parent: jobs[0]!, children: jobs.slice(1) };
}

/** The children of a flow parent, in the order they were given. */
export async function childResults(
  exec: Executor,
  st: TaskStatements,
  parentTask: string,
  parentId: number,
): Promise<ChildResult[]> {
  const rows = await st.call<{
    child_queue: string;
    child_id: string;
    state: ChildResult['state'];
    result: unknown;
    error: StoredError | null;
  }>(
    exec,
    'flow_child_results',
    [
      [parentTask, 'text'],
      [parentId, 'bigint'],
    ],
    { select: `child_queue, child_id, state, ${WRAPPED_RESULT}, error` },
  );
  return rows.map((r) => ({
    task: r.child_queue,
    id: Number(r.child_id),
    state: r.state,
    result: unwrapResult(r.result),
    error: r.error ?? null,
  }));
}
