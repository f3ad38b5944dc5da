import { execute } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import { quoteIdent } from '../driver/quote.js';
import { browseJobs, type BrowsedJob } from './browse.js';
import { runJobAction, type JobActionResult } from './job-actions.js';
import type { Ops } from './ops.js';

export type QueueAction = 'delete' | 'archive' | 'requeue';

/**
 * Runs a queue page's action on the selected msg_ids; returns what happened
 * (the dashboard's flash message). A registered task's queue and its
 * `<task>_dlq` go through the tasks engine, so flows, stored outcomes and
 * requeue lineage are kept (sql/tasks/0004_results.sql, 0007_flow_guard.sql):
 *   task queue, archive → the task's cancel (archived as cancelled, a running
 *     handler is signalled, a flow child counts as cancelled for its parent);
 *   task queue, delete → the task's delete (a flow child is refused: cancel it);
 *   `<task>_dlq`, requeue → the task's dead-letter requeue (a new job that
 *     records the dead letter, and a flow parent's children).
 * Other queues (and a task's dead letters deleted or archived): the queue's
 * own delete / archive / requeueDeadLetter.
 */
export async function runQueueAction(
  ops: Ops,
  queue: string,
  action: QueueAction,
  ids: readonly number[],
): Promise<string> {
  if (!['delete', 'archive', 'requeue'].includes(action))
    throw new InvalidArgumentError(
      `queue action must be delete, archive or requeue, got ${action}`,
    );
  const tasks = await registeredTasks(ops);
  if (tasks.has(queue) && action !== 'requeue') {
    const jobs: BrowsedJob[] = [];
    for (const id of ids)
      jobs.push(...(await browseJobs(ops.write, ops.schemas.tasks, queue, { id })));
    const as = action === 'archive' ? 'cancel' : 'delete';
    const r = await runJobAction(ops, as, queue, jobs);
    return `${queue} is a task's queue: ${action} ran as the task's ${as} (flows counted): ${done(r)} of ${ids.length} done${skipped(r, ids, jobs)}`;
  }
  const dlqOf = queue.endsWith('_dlq') ? queue.slice(0, -4) : '';
  if (action === 'requeue' && tasks.has(dlqOf)) {
    const moved = await ops.writeTasks.deadLetters(dlqOf).requeue({ ids: [...ids] });
    return `requeued ${moved.length} of ${ids.length} as new jobs of task ${dlqOf}`;
  }
  const q = ops.writeQueues;
  if (action === 'delete')
    return `deleted ${(await q.delete(queue, [...ids])).length} of ${ids.length}`;
  if (action === 'archive')
    return `archived ${(await q.archive(queue, [...ids])).length} of ${ids.length}`;
  let n = 0;
  for (const id of ids) if ((await q.requeueDeadLetter(queue, id)) !== null) n++;
  return `requeued ${n} of ${ids.length}`;
}

/** The registered tasks (none when the tasks engine is not installed). */
async function registeredTasks(ops: Ops): Promise<Set<string>> {
  if (!(await ops.components()).tasks) return new Set();
  const r = await execute<{ queue_name: string }>(
    ops.write,
    `SELECT queue_name FROM ${quoteIdent(ops.schemas.tasks)}.ops_tasks()`,
  );
  return new Set(r.rows.map((x) => x.queue_name));
}

const done = (r: JobActionResult[]) => r.filter((x) => x.outcome === 'done').length;

/** Why jobs were skipped (the first three), and ids that are no jobs of the task. */
function skipped(r: JobActionResult[], ids: readonly number[], jobs: BrowsedJob[]): string {
  const why = r.filter((x) => x.outcome === 'skipped').map((x) => `${x.id}: ${x.detail}`);
  const found = new Set(jobs.map((j) => j.msgId));
  why.push(...ids.filter((id) => !found.has(id)).map((id) => `${id}: no such job`));
  return why.length ? `; skipped ${why.slice(0, 3).join('; ')}${why.length > 3 ? '; …' : ''}` : '';
}
