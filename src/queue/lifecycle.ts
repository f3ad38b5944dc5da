import type { Executor } from '../driver/types.js';
import type { Arg } from './engine/calls.js';
import type { QueueEngine } from './engine/index.js';
import { toMetrics, toQueueInfo, type MetricsRow, type QueueRow } from './rows.js';
import type { CreateQueueOptions, QueueInfo, QueueMetrics } from './types.js';

// Queue management and metrics of QueueClient: create, drop, purge, list,
// validate a name, metrics. The client checks the queue name and delegates.

const name = (queue: string): [Arg] => [[queue, 'text']];

export async function createQueue(
  e: QueueEngine,
  exec: Executor,
  queue: string,
  options: CreateQueueOptions,
): Promise<void> {
  await e.call(exec, options.unlogged ? 'create_unlogged' : 'create', name(queue));
}

/** drop_queue / purge_queue, with the lock guard (they take the queue's table lock). */
async function guarded(e: QueueEngine, exec: Executor, fn: string, queue: string, what: string) {
  const rows = await e.call<{ r: unknown }>(exec, fn, name(queue), {
    lockTimeoutMs: e.lockTimeoutMs,
    locked: what,
  });
  return rows[0]!.r;
}

export async function dropQueue(e: QueueEngine, exec: Executor, queue: string): Promise<boolean> {
  const dropped = await guarded(e, exec, 'drop_queue', queue, `queue "${queue}" (drop)`);
  e.tables.forget(queue);
  return dropped as boolean;
}

export async function purgeQueue(e: QueueEngine, exec: Executor, queue: string): Promise<number> {
  const what = `a message of queue "${queue}" (purge)`;
  return Number(await guarded(e, exec, 'purge_queue', queue, what));
}

export async function listQueues(e: QueueEngine, exec: Executor): Promise<QueueInfo[]> {
  return (await e.call<QueueRow>(exec, 'list_queues', [])).map(toQueueInfo);
}

/** Asks the database whether `queue` is an acceptable name to create (throws when not). */
export async function validateQueueName(
  e: QueueEngine,
  exec: Executor,
  queue: string,
): Promise<void> {
  await e.call(exec, 'validate_queue_name', name(queue));
  await e.call(exec, 'format_table_name', [...name(queue), ['q', 'text']]);
}

/** `metrics_fast` (no scan of a large queue), or PGMQ's exact `metrics` when `exact`. */
export async function metrics(
  e: QueueEngine,
  exec: Executor,
  queue: string,
  exact: boolean,
): Promise<QueueMetrics> {
  const fn = exact ? 'metrics' : 'metrics_fast';
  return toMetrics((await e.call<MetricsRow>(exec, fn, name(queue)))[0]!);
}

export async function metricsAll(
  e: QueueEngine,
  exec: Executor,
  exact: boolean,
): Promise<QueueMetrics[]> {
  const fn = exact ? 'metrics_all' : 'metrics_fast_all';
  return (await e.call<MetricsRow>(exec, fn, [])).map(toMetrics);
}
