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
  /** Read and not finished: `last_read_at` set and `vt` in the future (counted on the vt index). */
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

interface CatalogRow {
  queue_name: string;
  q: string;
  seq: string | null;
  is_partitioned: boolean;
  is_unlogged: boolean;
  fast: boolean;
  est: string;
  arc_est: string;
  dlq: string | null;
  max_read_count: number | null;
  notify: boolean;
}

interface LiveRow {
  oldest: string | null;
  in_flight: string;
  delayed: string;
  retrying: string;
  fast_len: string | null;
  capped: string;
  sent: string | null;
}

/** Below this many rows a queue without fast metrics is counted exactly (a bounded read). */
export const EXACT_UP_TO = 10_000;

/**
 * Figures for every queue (or the named ones) without scanning a queue:
 *   1. one catalog statement: the queues, their estimates (reltuples summed
 *      over partitions), fast-metrics flag, dead-letter policy;
 *   2. per queue one statement of bounded cost: the first msg_id (oldest
 *      message), the rows with `vt` in the future on the vt index (its cost
 *      grows with the messages in flight or delayed, not with the backlog),
 *      the fast-metrics counter when enabled, else a count capped at
 *      EXACT_UP_TO + 1 rows.
 * Dead letters are the depth of the policy's dead-letter queue.
 */
export async function queueStats(
  exec: Executor,
  schema: string,
  only?: readonly string[],
): Promise<QueueStat[]> {
  const s = quoteIdent(schema);
  const cat = await execute<CatalogRow>(
    exec,
    `WITH m AS (
       SELECT m.queue_name, m.is_partitioned, m.is_unlogged,
              to_regclass(format('%I.%I', $1::text, ${s}.format_table_name(m.queue_name, 'q'))) AS q,
              to_regclass(format('%I.%I', $1::text, ${s}.format_table_name(m.queue_name, 'a'))) AS a
         FROM ${s}.meta m
        WHERE $2::text[] IS NULL OR m.queue_name = ANY($2::text[]))
     SELECT m.queue_name, m.q::text AS q, pg_get_serial_sequence(m.q::text, 'msg_id') AS seq, m.is_partitioned, m.is_unlogged,
            EXISTS (SELECT 1 FROM ${s}._fast_metrics f WHERE f.relid = m.q) AS fast,
            (SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint FROM pg_class c
              WHERE c.oid = m.q OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = m.q)) AS est,
            (SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint FROM pg_class c
              WHERE c.oid = m.a OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = m.a)) AS arc_est,
            p.dead_letter_queue AS dlq, p.max_read_count,
            EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = m.q AND t.tgname = 'trigger_notify_queue_insert_listeners') AS notify
       FROM m LEFT JOIN ${s}._dead_letter_policy p ON p.queue_name = m.queue_name
      WHERE m.q IS NOT NULL
      ORDER BY m.queue_name`,
    [schema, only ? [...only] : null],
  );
  const out: QueueStat[] = [];
  for (const r of cat.rows) {
    // r.q is regclass text, already quoted as needed.
    const live = await execute<LiveRow>(
      exec,
      `SELECT extract(epoch FROM clock_timestamp() - (SELECT enqueued_at FROM ${r.q} ORDER BY msg_id LIMIT 1))::float8 AS oldest,
              count(*) FILTER (WHERE last_read_at IS NOT NULL) AS in_flight,
              count(*) FILTER (WHERE last_read_at IS NULL AND read_ct = 0) AS delayed,
              count(*) FILTER (WHERE last_read_at IS NULL AND read_ct > 0) AS retrying,
              ${r.fast ? `(SELECT queue_length FROM ${s}.metrics($1::text))` : 'NULL::bigint'} AS fast_len,
              (SELECT count(*) FROM (SELECT 1 FROM ${r.q} LIMIT ${EXACT_UP_TO + 1}) x) AS capped,
              ${r.seq ? `(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ${r.seq})` : 'NULL::bigint'} AS sent
         FROM ${r.q} WHERE vt > clock_timestamp()`,
      r.fast ? [r.queue_name] : [],
    );
    const l = live.rows[0]!;
    const inFlight = Number(l.in_flight);
    const delayed = Number(l.delayed);
    const retrying = Number(l.retrying);
    const oldest = l.oldest === null ? null : Math.max(0, Number(l.oldest));
    const capped = Number(l.capped);
    const exact = l.fast_len !== null || capped <= EXACT_UP_TO;
    const depth =
      l.fast_len !== null ? Number(l.fast_len) : exact ? capped : Math.max(Number(r.est), capped);
    out.push({
      queue: r.queue_name,
      depth,
      depthExact: exact,
      inFlight,
      delayed,
      retrying,
      oldestAgeSeconds: oldest,
      sentTotal: Number(l.sent ?? 0),
      archivedEstimate: Number(r.arc_est),
      deadLetters: null,
      deadLetterQueue: r.dlq,
      maxReadCount: r.max_read_count,
      fastMetrics: r.fast,
      partitioned: r.is_partitioned,
      unlogged: r.is_unlogged,
      notifyInsert: r.notify,
    });
  }
  const byName = new Map(out.map((q) => [q.queue, q]));
  for (const q of out) {
    if (!q.deadLetterQueue) continue;
    const d =
      byName.get(q.deadLetterQueue) ?? (await queueStats(exec, schema, [q.deadLetterQueue]))[0];
    q.deadLetters = d ? d.depth : 0;
  }
  return out;
}
