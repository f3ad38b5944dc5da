import type { Headers, Message, QueueInfo, QueueMetrics } from './types.js';

/** A `message_record` row as any driver returns it (bigint may come as string or bigint). */
export interface MessageRow {
  msg_id: string | number | bigint;
  read_ct: number | string;
  enqueued_at: Date | string;
  last_read_at: Date | string | null;
  vt: Date | string;
  message: unknown;
  headers: unknown;
}

const toDate = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));
const toNum = (v: string | number | bigint): number => Number(v);
const toNullableNum = (v: string | number | bigint | null): number | null =>
  v == null ? null : Number(v);

export function toMessage<T>(row: MessageRow): Message<T> {
  return {
    msgId: toNum(row.msg_id),
    readCount: Number(row.read_ct),
    enqueuedAt: toDate(row.enqueued_at),
    lastReadAt: row.last_read_at == null ? null : toDate(row.last_read_at),
    visibleAt: toDate(row.vt),
    // Drivers hand jsonb back parsed (a driver contract), so a string is a JSON string.
    message: row.message as T,
    headers: (row.headers as Headers | null) ?? null,
  };
}

export interface QueueRow {
  queue_name: string;
  is_partitioned: boolean;
  is_unlogged: boolean;
  created_at: Date | string;
}

export function toQueueInfo(row: QueueRow): QueueInfo {
  return {
    queueName: row.queue_name,
    isPartitioned: row.is_partitioned,
    isUnlogged: row.is_unlogged,
    createdAt: toDate(row.created_at),
  };
}

export interface MetricsRow {
  queue_name: string;
  queue_length: string | number | bigint;
  newest_msg_age_sec: number | null;
  oldest_msg_age_sec: number | null;
  total_messages: string | number | bigint;
  scrape_time: Date | string;
  queue_visible_length: string | number | bigint;
  default_partition_length: string | number | bigint | null;
  /** Only from metrics_fast(); metrics() is always exact. */
  exact?: boolean;
}

export function toMetrics(row: MetricsRow): QueueMetrics {
  return {
    queueName: row.queue_name,
    queueLength: toNum(row.queue_length),
    queueVisibleLength: toNum(row.queue_visible_length),
    newestMsgAgeSec: toNullableNum(row.newest_msg_age_sec),
    oldestMsgAgeSec: toNullableNum(row.oldest_msg_age_sec),
    totalMessages: toNum(row.total_messages),
    scrapeTime: toDate(row.scrape_time),
    defaultPartitionLength: toNullableNum(row.default_partition_length),
    exact: row.exact ?? true,
  };
}

export const MESSAGE_COLUMNS = 'msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers';
