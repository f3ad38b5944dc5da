import type { ConsumerInfo, DeadLetter, StreamInfo, StreamMessage } from './types.js';

export interface MessageRow {
  msg_id: string | number;
  batch_id: string | number;
  type: string | null;
  payload: string | null;
  retry_count: number | null;
  created_at: Date;
  extra1: string | null;
  extra2: string | null;
  extra3: string | null;
  extra4: string | null;
}

function parsePayload(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text; // text payloads are stored verbatim and need not be JSON
  }
}

export function toMessage<T>(row: MessageRow): StreamMessage<T> {
  return {
    msgId: Number(row.msg_id),
    batchId: Number(row.batch_id),
    type: row.type,
    payload: parsePayload(row.payload) as T,
    data: row.payload,
    retryCount: row.retry_count,
    createdAt: row.created_at,
    extra1: row.extra1,
    extra2: row.extra2,
    extra3: row.extra3,
    extra4: row.extra4,
  };
}

/** The 10 parameters of `ROW(...)::pgque.message`, in field order. */
export function messageParams(m: StreamMessage<unknown>): unknown[] {
  return [
    m.msgId,
    m.batchId,
    m.type,
    m.data,
    m.retryCount,
    m.createdAt,
    m.extra1,
    m.extra2,
    m.extra3,
    m.extra4,
  ];
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function toDeadLetter(stream: string, r: Record<string, unknown>): DeadLetter {
  return {
    id: Number(r.dl_id),
    source: stream,
    sourceId: Number(r.ev_id),
    payload: r.ev_data as string | null,
    attempts: (num(r.ev_retry) ?? 0) + 1,
    failedAt: r.dl_time as Date,
    dlId: Number(r.dl_id),
    queueId: Number(r.dl_queue_id),
    consumerId: Number(r.dl_consumer_id),
    time: r.dl_time as Date,
    reason: r.dl_reason as string | null,
    evId: Number(r.ev_id),
    evTime: r.ev_time as Date,
    evRetry: num(r.ev_retry),
    evType: r.ev_type as string | null,
    evData: r.ev_data as string | null,
    evExtra1: r.ev_extra1 as string | null,
    evExtra2: r.ev_extra2 as string | null,
    evExtra3: r.ev_extra3 as string | null,
    evExtra4: r.ev_extra4 as string | null,
  };
}

export function toStreamInfo(r: Record<string, unknown>): StreamInfo {
  return {
    queueName: r.queue_name as string,
    tickerLagSeconds: num(r.ticker_lag_s),
    eventsPerSecond: num(r.ev_per_sec),
    newEvents: Number(r.ev_new ?? 0),
    lastTickId: num(r.last_tick_id),
    paused: r.queue_ticker_paused as boolean,
    externalTicker: r.queue_external_ticker as boolean,
  };
}

export function toConsumerInfo(r: Record<string, unknown>): ConsumerInfo {
  return {
    queueName: r.queue_name as string,
    consumerName: r.consumer_name as string,
    lagSeconds: num(r.lag_s),
    lastSeenSeconds: num(r.last_seen_s),
    lastTick: num(r.last_tick),
    currentBatch: num(r.current_batch),
    nextTick: num(r.next_tick),
    pendingEvents: num(r.pending_events),
  };
}
