import { execute, type Executor } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import {
  MESSAGE_COLUMNS,
  QueueEngine,
  checkQueueName,
  toMessage,
  type Message,
  type MessageRow,
} from '../queue/index.js';
import type { JobState } from '../tasks/client.js';
import { H } from '../tasks/headers.js';

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
const LIVE: readonly JobState[] = ['queued', 'scheduled', 'running', 'retrying'];

export interface BrowsedJob extends BrowsedMessage {
  task: string;
  state: JobState;
}

// The job state, as TaskClient.getJob derives it (keep them in step): a live
// row is running while leased, else by its vt and read count; an archived
// row by the x-pgferry-state header the tasks engine writes.
const LIVE_STATE = `CASE WHEN last_read_at IS NOT NULL AND vt > clock_timestamp() THEN 'running'
  WHEN vt > clock_timestamp() THEN CASE WHEN read_ct > 0 THEN 'retrying' ELSE 'scheduled' END
  ELSE 'queued' END`;
const ARCHIVED_STATE = `CASE headers->>'${H.state}' WHEN 'dead' THEN 'dead' WHEN 'cancelled' THEN 'cancelled' ELSE 'completed' END`;

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

/** The queue's table by the queue engine's one resolver (browsing is rare: no cache kept). */
function table(exec: Executor, schema: string, queue: string, prefix: 'q' | 'a'): Promise<string> {
  return new QueueEngine(schema).tables.table(exec, queue, prefix);
}

const WHERE = `msg_id > $1 AND ($2::bigint IS NULL OR msg_id = $2)
  AND ($3::jsonb IS NULL OR message @> $3::jsonb) AND ($4::jsonb IS NULL OR headers @> $4::jsonb)`;

function params(f: BrowseFilter, afterId: number): unknown[] {
  return [
    afterId,
    f.id ?? null,
    f.payload ? JSON.stringify(f.payload) : null,
    f.headers ? JSON.stringify(f.headers) : null,
  ];
}

/**
 * Browses a queue (or its archive) without reading it: nothing changes, no
 * read count moves. Search by id, payload field and header (jsonb
 * containment), in msg_id order.
 */
export async function browseMessages(
  exec: Executor,
  schema: string,
  queue: string,
  filter: BrowseFilter & { archive?: boolean } = {},
): Promise<BrowsedMessage[]> {
  checkQueueName(queue);
  const { limit, afterId } = checkFilter(filter);
  const t = await table(exec, schema, queue, filter.archive ? 'a' : 'q');
  const res = await execute<MessageRow & { archived_at: Date | null }>(
    exec,
    `SELECT ${MESSAGE_COLUMNS}, ${filter.archive ? 'archived_at' : 'NULL::timestamptz AS archived_at'}
       FROM ${t} WHERE ${WHERE} ORDER BY msg_id LIMIT ${limit}`,
    params(filter, afterId),
  );
  return res.rows.map((r) => ({
    ...toMessage(r),
    archivedAt: r.archived_at ? new Date(r.archived_at) : null,
  }));
}

/** Jobs of a task, live and archived, by state, id, payload field or header. */
export async function browseJobs(
  exec: Executor,
  queueSchema: string,
  task: string,
  filter: BrowseFilter & { state?: JobState } = {},
): Promise<BrowsedJob[]> {
  checkQueueName(task);
  const { limit, afterId } = checkFilter(filter);
  if (filter.state !== undefined && !JOB_STATES.includes(filter.state))
    throw new InvalidArgumentError(
      `state must be one of ${JOB_STATES.join(', ')}, got ${String(filter.state)}`,
    );
  const live = !filter.state || LIVE.includes(filter.state);
  const parts: string[] = [];
  if (live)
    parts.push(
      `SELECT ${MESSAGE_COLUMNS}, NULL::timestamptz AS archived_at, ${LIVE_STATE} AS state
         FROM ${await table(exec, queueSchema, task, 'q')} WHERE ${WHERE}`,
    );
  if (!filter.state || !live)
    parts.push(
      `SELECT ${MESSAGE_COLUMNS}, archived_at, ${ARCHIVED_STATE} AS state
         FROM ${await table(exec, queueSchema, task, 'a')} WHERE ${WHERE}`,
    );
  const res = await execute<MessageRow & { archived_at: Date | null; state: JobState }>(
    exec,
    `SELECT * FROM (${parts.join(' UNION ALL ')}) j
      WHERE $5::text IS NULL OR j.state = $5::text ORDER BY msg_id LIMIT ${limit}`,
    [...params(filter, afterId), filter.state ?? null],
  );
  return res.rows.map((r) => ({
    ...toMessage(r),
    archivedAt: r.archived_at ? new Date(r.archived_at) : null,
    task,
    state: r.state,
  }));
}
