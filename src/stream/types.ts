import type { DeadLetterRecord } from '../dead-letter.js';
import type { Queryable } from '../driver/types.js';
import type { TxOption } from '../driver/tx-option.js';

/** An event as `pgque.receive` returns it (`pgque.message`). */
export interface StreamMessage<T = unknown> {
  /** Event id: unique per stream, increasing in send order, with gaps. */
  msgId: number;
  /** The batch this delivery belongs to (same for every event of one receive). */
  batchId: number;
  /** Event type; `'default'` when sent without one. */
  type: string | null;
  /** The payload parsed as JSON; the raw text when it is not JSON. */
  payload: T;
  /** The payload text exactly as stored. */
  data: string | null;
  /** null on first delivery; 1, 2, … on redeliveries after a nack. */
  retryCount: number | null;
  createdAt: Date;
  extra1: string | null;
  extra2: string | null;
  extra3: string | null;
  extra4: string | null;
}

export type { TxOption };

export interface StreamSendOptions extends TxOption {
  /** Event type (PgQue's `type_name`). Default `'default'`. */
  type?: string | null;
}

export interface ReceiveOptions extends TxOption {
  /** Row limit of this receive (the batch still holds all its events). Default 100. */
  maxMessages?: number;
}

export interface ReceiveCoopOptions extends ReceiveOptions {
  /** Take over another member's batch whose heartbeat is older than this. Default: never. */
  deadIntervalMs?: number;
  /** @deprecated Use `deadIntervalMs`; kept one release (giving both is an InvalidArgumentError). */
  deadIntervalSeconds?: number;
}

export interface NackOptions extends TxOption {
  /** Delay before redelivery (rounded to whole seconds by the engine). Default 60000. */
  retryAfterMs?: number;
  /** @deprecated Use `retryAfterMs`; kept one release (giving both is an InvalidArgumentError). */
  retryAfterSeconds?: number;
  /** Reason stored with a dead letter. */
  reason?: string | null;
}

/**
 * Parameters of `set_queue_config`, with their value types. The interval
 * parameters take PgQue's interval text (`'2 hours'`) or milliseconds (a number).
 */
export interface StreamConfig {
  ticker_max_count: number;
  ticker_max_lag: string | number;
  ticker_idle_period: string | number;
  ticker_paused: boolean;
  rotation_period: string | number;
  external_ticker: boolean;
  max_retries: number;
  disable_insert: boolean;
}

/**
 * A dead event of a stream (PgQue's dead_letter row). It also carries the one
 * dead-letter record shape (docs/concepts.md): `id` = `dlId`, `source` = the
 * stream, `sourceId` = `evId`, `payload` = `evData`, `reason`, `attempts`
 * (deliveries: retries + 1), `failedAt` = `time`.
 */
export interface DeadLetter extends DeadLetterRecord<string | null> {
  dlId: number;
  queueId: number;
  consumerId: number;
  time: Date;
  reason: string | null;
  evId: number;
  evTime: Date;
  evRetry: number | null;
  evType: string | null;
  evData: string | null;
  evExtra1: string | null;
  evExtra2: string | null;
  evExtra3: string | null;
  evExtra4: string | null;
}

export interface StreamInfo {
  queueName: string;
  /** Seconds since the last tick. */
  tickerLagSeconds: number | null;
  eventsPerSecond: number | null;
  /** Events sent since the last tick. */
  newEvents: number;
  lastTickId: number | null;
  paused: boolean;
  externalTicker: boolean;
}

export interface ConsumerInfo {
  queueName: string;
  consumerName: string;
  lagSeconds: number | null;
  lastSeenSeconds: number | null;
  lastTick: number | null;
  currentBatch: number | null;
  nextTick: number | null;
  pendingEvents: number | null;
}

/** What a handler gets besides the message. */
export interface HandlerContext {
  /**
   * The batch's transaction: writes made through it commit together with the
   * ack. A handler that throws is rolled back to its own savepoint first.
   */
  tx: Queryable;
  batchId: number;
  /** Aborted when the consumer stops. */
  signal: AbortSignal;
}

export type Handler<T = unknown> = (msg: StreamMessage<T>, ctx: HandlerContext) => unknown;
