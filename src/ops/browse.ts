import { execute, type Executor } from '../driver/types.js';
import { quoteIdent } from '../driver/quote.js';
import { InvalidArgumentError } from '../errors.js';
import { checkQueueName, toMessage, type Message, type MessageRow } from '../queue/index.js';
import type { JobState } from '../tasks/client.js';

export interface BrowseFilter {
  /** Only this message / job id. */
  id?: number;
  /** Only messages whose body contains this JSON (jsonb `@>`, uses a GIN index when there is one). */
  payload?: Record<string, unknown>;
  /** Only messages whose headers contain this JSON (jsonb `@>`). */
  headers?: Record<string, unknown>;
  /** Only ids above this (paging). Default 0. */
  afterId?: number;
  /** How many at most (1–1000). Default 50. */
  limit?: number;
}

export interface BrowsedMessage extends Message {
  archivedAt: Date | null;
}

export const JOB_STATES: readonly JobState[] = [
  'queued',
  'scheduled',
  'running',
  'retrying',
  'completed',
  'cancelled',
  'dead',
];

export interface BrowsedJob extends BrowsedMessage {
  task: string;
  state: JobState;
}

function checkFilter(f: BrowseFilter): { limit: number; afterId: number } {
  const limit = f.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new InvalidArgumentError(`limit must be an integer from 1 to 1000, got ${String(limit)}`);
  const afterId = f.afterId ?? 0;
  if (!Number.isSafeInteger(afterId) || afterId < 0)
    throw new InvalidArgumentError('afterId must be a non-negative integer');
  if (f.id !== undefined && (!Number.isSafeInteger(f.id) || f.id < 1))
    throw new InvalidArgumentError(`id must be a positive integer, got ${String(f.id)}`);
  for (const k of ['payload', 'headers'] as const) {
    const v = f[k];
    if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v)))
      throw new InvalidArgumentError(`${k} filter must be a JSON object`);
  }
  return { limit, afterId };
}

function params(f: BrowseFilter, afterId: number, limit: number): unknown[] {
  return [
    afterId,
    f.id ?? null,
    f.payload ? JSON.stringify(f.payload) : null,
    f.headers ? JSON.stringify(f.headers) : null,
    limit,
  ];
}

/**
 * Browses a queue (or its archive) without reading it: nothing changes, no
 * read count moves. Search by id, payload field and header (jsonb
 * containment), in msg_id order, through the queue engine's `ops_browse`
 * (sql/queue/0009_ops.sql).
 */
export async function browseMessages(
  exec: Executor,
  schema: string,
  queue: string,
  filter: BrowseFilter & { archive?: boolean } = {},
): Promise<BrowsedMessage[]> {
  checkQueueName(queue);
  const { limit, afterId } = checkFilter(filter);
  const res = await execute<MessageRow & { archived_at: Date | null }>(
    exec,
    `SELECT * FROM ${quoteIdent(schema)}.ops_browse($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)`,
    [queue, filter.archive === true, ...params(filter, afterId, limit)],
  );
  return res.rows.map((r) => ({
    ...toMessage(r),
    archivedAt: r.archived_at ? new Date(r.archived_at) : null,
  }));
}

/**
 * Jobs of a task, live and archived, by state, id, payload field or header,
 * through the tasks engine's `ops_browse_jobs` (sql/tasks/0002_ops.sql), which
 * derives a job's state as TaskClient.getJob does.
 */
export async function browseJobs(
  exec: Executor,
  tasksSchema: string,
  task: string,
  filter: BrowseFilter & { state?: JobState } = {},
): Promise<BrowsedJob[]> {
  checkQueueName(task);
  const { limit, afterId } = checkFilter(filter);
  if (filter.state !== undefined && !JOB_STATES.includes(filter.state))
    throw new InvalidArgumentError(
      `state must be one of ${JOB_STATES.join(', ')}, got ${String(filter.state)}`,
    );
  const res = await execute<MessageRow & { archived_at: Date | null; state: JobState }>(
    exec,
    `SELECT * FROM ${quoteIdent(tasksSchema)}.ops_browse_jobs($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)`,
    [task, filter.state ?? null, ...params(filter, afterId, limit)],
  );
  return res.rows.map((r) => ({
    ...toMessage(r),
    archivedAt: r.archived_at ? new Date(r.archived_at) : null,
    task,
    state: r.state,
  }));
}
