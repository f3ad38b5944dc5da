import { execute, type Executor } from '../driver/types.js';
import { quoteIdent } from '../driver/quote.js';

/** One queue's operational figures, cheap enough to read on every scrape. */
export interface QueueStat {
  queue: string;
  /**
   * Messages in the queue. Exact when the queue has fast metrics enabled
   * (its counter) or holds at most EXACT_UP_TO rows (counted with a LIMIT);
   * beyond that the planner's estimate (`pg_class.reltuples`, refreshed by
   * autovacuum / ANALYZE). Never a full table scan.
   */
  depth: number;
  depthExact: boolean;
  /** Read and not finished: `last_read_at` set and `vt` in the future. */
  inFlight: number;
  /** Not visible yet and never read: sent with a delay (tasks: scheduled). */
  delayed: number;
  /** Not visible, read before and handed back with a delay (tasks: retrying). */
  retrying: number;
  /** Seconds since the oldest message was sent (first row of the msg_id primary key), null when empty. */
  oldestAgeSeconds: number | null;
  /** The highest msg_id issued so far (the queue's sequence): a counter of messages sent. */
  sentTotal: number;
  /** Rows in the archive table, planner estimate. */
  archivedEstimate: number;
  /** Messages in this queue's dead-letter queue (null without a policy). */
  deadLetters: number | null;
  deadLetterQueue: string | null;
  maxReadCount: number | null;
  fastMetrics: boolean;
  partitioned: boolean;
  unlogged: boolean;
  /** Whether an insert NOTIFY trigger is set (`enable_notify_insert`). */
  notifyInsert: boolean;
}

interface StatRow {
  queue_name: string;
  depth: string;
  depth_exact: boolean;
  in_flight: string;
  delayed: string;
  retrying: string;
  oldest_age_sec: number | null;
  sent_total: string;
  archived_estimate: string;
  dead_letter_queue: string | null;
  max_read_count: number | null;
  fast_metrics: boolean;
  partitioned: boolean;
  unlogged: boolean;
  notify_insert: boolean;
}

/** Below this many rows a queue without fast metrics is counted exactly (a bounded read). */
export const EXACT_UP_TO = 10_000;

/**
 * Figures for every queue (or the named ones), read through the queue
 * engine's `ops_queue_stats` (sql/queue/0009_ops.sql): per queue one
 * statement (the first msg_id for the oldest message, the rows with `vt` in
 * the future — a `vt > clock_timestamp()` filter, which reads the live table
 * since PostgreSQL cannot use it as an index condition —, the fast-metrics
 * counter when enabled, else a count capped at EXACT_UP_TO + 1 rows, then the
 * planner's estimate). Dead letters are the depth of the policy's dead-letter queue.
 */
export async function queueStats(
  exec: Executor,
  schema: string,
  only?: readonly string[],
): Promise<QueueStat[]> {
  const res = await execute<StatRow>(
    exec,
    `SELECT * FROM ${quoteIdent(schema)}.ops_queue_stats($1::text[], $2)`,
    [only ? [...only] : null, EXACT_UP_TO],
  );
  const out: QueueStat[] = res.rows.map((r) => ({
    queue: r.queue_name,
    depth: Number(r.depth),
    depthExact: r.depth_exact,
    inFlight: Number(r.in_flight),
    delayed: Number(r.delayed),
    retrying: Number(r.retrying),
    oldestAgeSeconds: r.oldest_age_sec === null ? null : Number(r.oldest_age_sec),
    sentTotal: Number(r.sent_total),
    archivedEstimate: Number(r.archived_estimate),
    deadLetters: null,
    deadLetterQueue: r.dead_letter_queue,
    maxReadCount: r.max_read_count,
    fastMetrics: r.fast_metrics,
    partitioned: r.partitioned,
    unlogged: r.unlogged,
    notifyInsert: r.notify_insert,
  }));
  const byName = new Map(out.map((q) => [q.queue, q]));
  for (const q of out) {
    if (!q.deadLetterQueue) continue;
    const d =
      byName.get(q.deadLetterQueue) ?? (await queueStats(exec, schema, [q.deadLetterQueue]))[0];
    q.deadLetters = d ? d.depth : 0;
  }
  return out;
}
