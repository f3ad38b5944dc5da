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

/**
 * A message row of the prepared reads (engine/read.ts, `readLocked`): the
 * three timestamps come as `extract(epoch FROM …)`, seconds with six
 * decimals, not as timestamptz. Why: the driver decodes a timestamptz with
 * a date parser (~0.45 µs in `pg`, three per message: ~15 % of a read's
 * client time), the decimal costs a string split; the server's numeric
 * output is also cheaper than its timestamp output. Same Date afterwards.
 */
export interface EpochMessageRow {
  msg_id: string | number | bigint;
  read_ct: number | string;
  enqueued_at: string | number;
  last_read_at: string | number | null;
  vt: string | number;
  message: unknown;
  headers: unknown;
}

/** The select list of an EpochMessageRow over table alias `m`. */
export const EPOCH_MESSAGE_COLUMNS = (m: string): string =>
  `${m}.msg_id, ${m}.read_ct, extract(epoch FROM ${m}.enqueued_at) AS enqueued_at, extract(epoch FROM ${m}.last_read_at) AS last_read_at, extract(epoch FROM ${m}.vt) AS vt, ${m}.message, ${m}.headers`;

/**
 * Milliseconds since the epoch from `extract(epoch …)`, truncated to the
 * millisecond as the drivers' timestamp parsers truncate (toward the past):
 * numeric text (`"1733500000.123456"`, `"-5.500000"`, `"Infinity"`), or a
 * number when the caller's driver parses numeric (or a server before 14
 * returns float8). The text's whole seconds and its milliseconds are read
 * apart, so every instant a Date holds decodes exactly.
 */
export function epochMs(v: string | number): number {
  if (typeof v === 'number') {
    // A double: within a microsecond of a whole millisecond is that millisecond.
    const ms = v * 1000;
    const near = Math.round(ms);
    return Math.abs(ms - near) < 1e-3 ? near : Math.floor(ms);
  }
  const dot = v.indexOf('.');
  if (dot < 0) return Number(v) * 1000; // whole seconds, or ±Infinity
  const neg = v.charCodeAt(0) === 45; // '-'
  const frac = (v.slice(dot + 1) + '000000').slice(0, 6);
  const ms = Number(v.slice(neg ? 1 : 0, dot)) * 1000 + Number(frac.slice(0, 3));
  // Before 1970 a fraction of a millisecond left over makes it one earlier.
  return neg ? -ms - (Number(frac.slice(3)) > 0 ? 1 : 0) : ms;
}

export function epochToMessage<T>(row: EpochMessageRow): Message<T> {
  return {
    msgId: toNum(row.msg_id),
    readCount: Number(row.read_ct),
    enqueuedAt: new Date(epochMs(row.enqueued_at)),
    lastReadAt: row.last_read_at == null ? null : new Date(epochMs(row.last_read_at)),
    visibleAt: new Date(epochMs(row.vt)),
    message: row.message as T,
    headers: (row.headers as Headers | null) ?? null,
  };
}
