import type { Executor } from '../driver/types.js';
import { call } from './engine/calls.js';
import { InvalidArgumentError } from '../errors.js';
import type { TxOption } from './types.js';
import { checkInt, describe } from './validate.js';

/**
 * Partitioned queues (PGMQ's `create_partitioned`, without pg_partman):
 * native range partitions by msg_id (a number: messages per partition) or
 * by enqueue time (a PostgreSQL interval such as `'1 day'`), a default
 * partition that takes any burst larger than the partitions made ahead, and
 * retention. See docs/queue-reliability.md.
 */
export interface CreatePartitionedQueueOptions extends TxOption {
  /** Messages per partition (number) or a time interval (`'1 hour'`, `'1 day'`, `'1 month'`). Default 10000. */
  partitionInterval?: number | string;
  /**
   * Partitions wholly older than this are dropped by maintenance, with their
   * messages: a msg_id distance (number, with numeric partitions) or an
   * interval (string, with time partitions). `null` keeps everything. Default 100000.
   */
  retentionInterval?: number | string | null;
  /** Partitions made ahead of the current one. Default 4. */
  premake?: number;
}

export interface ConvertArchiveOptions extends TxOption {
  /** As for {@link CreatePartitionedQueueOptions.partitionInterval}, on msg_id or archived_at. Default 10000. */
  partitionInterval?: number | string;
  /** As for {@link CreatePartitionedQueueOptions.retentionInterval}. Default 100000. */
  retentionInterval?: number | string | null;
  /** Partitions made ahead of the current one (PGMQ's `leading_partition`). Default 10. */
  leadingPartitions?: number;
}

/** Text form of an interval option, checked for type only (the SQL checks meaning). */
export function intervalText(
  what: string,
  value: number | string | null | undefined,
  fallback: string | null,
): string | null {
  if (value === undefined) return fallback;
  if (value === null) return null;
  if (typeof value === 'number')
    return String(checkInt(what, value, { min: 1, max: Number.MAX_SAFE_INTEGER }));
  if (typeof value === 'string' && value.trim() !== '') return value;
  throw new InvalidArgumentError(
    `${what} must be a positive integer or an interval string, got ${describe(value)}`,
  );
}

export async function createPartitioned(
  exec: Executor,
  s: string,
  queue: string,
  options: CreatePartitionedQueueOptions,
): Promise<void> {
  const premake = checkInt('premake', options.premake ?? 4, { min: 1 });
  await partitionCall(exec, s, 'create_partitioned', queue, options, premake);
}

export async function convertArchivePartitioned(
  exec: Executor,
  s: string,
  queue: string,
  options: ConvertArchiveOptions,
): Promise<void> {
  const leading = checkInt('leadingPartitions', options.leadingPartitions ?? 10, { min: 1 });
  // The conversion itself: the public SQL function only answers a missing
  // archive with PGMQ's NOTICE, here it is a QueueNotFoundError.
  await partitionCall(exec, s, '_convert_archive_partitioned', queue, options, leading);
}

/** `(queue, partition interval, retention interval, premake | leading partitions)`. */
function partitionCall(
  exec: Executor,
  s: string,
  fn: string,
  queue: string,
  options: CreatePartitionedQueueOptions | ConvertArchiveOptions,
  count: number,
): Promise<unknown> {
  return call(exec, s, fn, [
    [queue, 'text'],
    [intervalText('partitionInterval', options.partitionInterval, '10000'), 'text'],
    [intervalText('retentionInterval', options.retentionInterval, '100000'), 'text'],
    [count, 'integer'],
  ]);
}

/** What one `run_maintenance(queue)` call did. */
export interface MaintenanceResult {
  queueName: string;
  /** Another session was maintaining this queue at the time; nothing was done. */
  skipped: boolean;
  partitionsCreated: number;
  partitionsDropped: number;
  /** Messages removed by partition retention (dropped partitions, old rows of the default partition). */
  rowsDropped: number;
  /** Archived messages deleted by archive retention in this call. */
  archiveRowsDeleted: number;
  /** Archive retention stopped at the batch size: more to delete. */
  morePending: boolean;
}

interface MaintenanceRow {
  queue_name: string;
  skipped: boolean;
  partitions_created: number;
  partitions_dropped: number;
  rows_dropped: string | number;
  archive_rows_deleted: string | number;
  more_pending: boolean;
}

export async function runMaintenance(
  exec: Executor,
  s: string,
  queue: string,
  batchSize: number,
): Promise<MaintenanceResult> {
  const rows = await call<MaintenanceRow>(exec, s, 'run_maintenance', [
    [queue, 'text'],
    [checkInt('batchSize', batchSize, { min: 1 }), 'integer'],
  ]);
  const r = rows[0]!;
  return {
    queueName: r.queue_name,
    skipped: r.skipped,
    partitionsCreated: Number(r.partitions_created),
    partitionsDropped: Number(r.partitions_dropped),
    rowsDropped: Number(r.rows_dropped),
    archiveRowsDeleted: Number(r.archive_rows_deleted),
    morePending: r.more_pending,
  };
}

export async function listMaintainedQueues(exec: Executor, s: string): Promise<string[]> {
  const rows = await call<{ r: string }>(exec, s, 'list_maintained_queues', []);
  return rows.map((row) => row.r);
}
