import type { TxOption } from '../driver/tx-option.js';

/** Message headers: any JSON object (PGMQ stores them as jsonb). */
export type Headers = Record<string, unknown>;

/** A message as PGMQ's `message_record` describes it. */
export interface Message<T = unknown> {
  msgId: number;
  /** How many times the message has been read (delivered). */
  readCount: number;
  enqueuedAt: Date;
  lastReadAt: Date | null;
  /** When the message becomes (or became) visible again: PGMQ's `vt`. */
  visibleAt: Date;
  message: T;
  headers: Headers | null;
}

export interface QueueInfo {
  queueName: string;
  isPartitioned: boolean;
  isUnlogged: boolean;
  createdAt: Date;
}

export interface QueueMetrics {
  queueName: string;
  /** Messages in the queue table (visible or not). */
  queueLength: number;
  /** Messages visible now. */
  queueVisibleLength: number;
  newestMsgAgeSec: number | null;
  oldestMsgAgeSec: number | null;
  /** Highest msg_id ever issued. */
  totalMessages: number;
  scrapeTime: Date;
  defaultPartitionLength: number | null;
  /**
   * True when every figure is exact. `metrics()` estimates queueLength,
   * queueVisibleLength and the ages on a large queue without fast metrics
   * (see docs/queue.md, "Metrics"); `{ exact: true }` always counts.
   */
  exact: boolean;
}

export interface MetricsOptions extends TxOption {
  /** Count the whole table as PGMQ's `metrics()` does, however large it is. Default false. */
  exact?: boolean;
}

export type { TxOption };

export interface SendOptions extends TxOption {
  headers?: Headers | null;
  /** Milliseconds until the message becomes visible (PGMQ's `delay`, to the millisecond). Default 0. */
  delayMs?: number;
  /** @deprecated Use `delayMs` (this alias goes in the next release). Seconds until visible. */
  delaySeconds?: number;
  /** Exact time the message becomes visible (PGMQ's timestamptz `delay`). Excludes `delayMs`. */
  deliverAt?: Date;
}

export interface SendBatchOptions extends TxOption {
  /** One headers object (or null) per message; same length as the messages. */
  headers?: (Headers | null)[];
  /** Milliseconds until the messages become visible. Default 0. */
  delayMs?: number;
  /** @deprecated Use `delayMs` (this alias goes in the next release). */
  delaySeconds?: number;
  deliverAt?: Date;
}

export interface ReadOptions extends TxOption {
  /**
   * Milliseconds the read messages stay invisible to other readers. PGMQ
   * counts whole seconds: rounded up. Default 30000.
   */
  visibilityTimeoutMs?: number;
  /** @deprecated Use `visibilityTimeoutMs` (this alias goes in the next release). */
  visibilityTimeoutSeconds?: number;
  /** Absolute time until which read messages stay invisible. Excludes `visibilityTimeoutMs`. */
  visibleUntil?: Date;
  /** How many messages at most. Default 1. */
  qty?: number;
  /** Only messages whose body contains this JSON (jsonb `@>`). */
  conditional?: unknown;
}

export interface ReadWithPollOptions extends ReadOptions {
  /** How long the database waits for a message (whole seconds in PGMQ: rounded up). Default 5000. */
  maxPollMs?: number;
  /** @deprecated Use `maxPollMs` (this alias goes in the next release). */
  maxPollSeconds?: number;
  /** Pause between attempts inside the database. Default 100. */
  pollIntervalMs?: number;
}

export interface PopOptions extends TxOption {
  /** How many messages at most. Default 1. */
  qty?: number;
}

export interface CreateQueueOptions extends TxOption {
  /** UNLOGGED queue table: faster, emptied after a crash. Default false. */
  unlogged?: boolean;
}
