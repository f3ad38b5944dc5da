import type { Executor } from '../driver/types.js';
import type { JsonValue } from './serializer.js';

/** A message as a backend hands it to the bus: its id in the member's queue and its raw JSON body. */
export interface BackendMessage {
  msgId: number;
  message: JsonValue;
  /** The message's headers (the publisher's W3C trace context), when the backend carries them. */
  headers?: Record<string, unknown> | null;
}

/** A member queue's row as the backends' reads select it (msg_id as text). */
export interface BackendRow {
  msg_id: string;
  message: JsonValue;
  headers: Record<string, unknown> | null;
}

export const toBackendMessages = (rows: readonly BackendRow[]): BackendMessage[] =>
  rows.map((r) => ({ msgId: Number(r.msg_id), message: r.message, headers: r.headers }));

/** How a publish is sent. */
export interface BackendPublishOptions {
  /** Run on the caller's transaction: peers get the message only if it commits. */
  tx?: Executor;
  /** Headers to send with the message (the trace context), where the backend carries them. */
  headers?: Record<string, unknown> | null;
}

export interface BackendReadOptions {
  /** The channel the queue belongs to (the isolated backend checks it on every call). */
  channel: string;
  /** Seconds a read message stays hidden before it is delivered again. */
  visibilityTimeoutSeconds: number;
  /** Most messages returned by one read. */
  batchSize: number;
  /** Longest wait for the first message; an empty list after that. */
  maxPollSeconds: number;
  /** Re-check interval when no notification can wake the reader. */
  pollIntervalMs: number;
  /** Ends the wait early (the bus is stopping). */
  signal?: AbortSignal;
  /**
   * Handled messages to archive before reading (backends with
   * `archivesOnRead` only): the archive rides on the next read's statement.
   */
  archive?: readonly number[];
  /**
   * Set by the bus when it holds handled messages back from this read
   * (backends with `listening` only; `archive` is then empty): they are due
   * for archiving in this many milliseconds, so a reader with nothing to
   * deliver returns [] by then, and the next read carries them. With
   * `archive` non-empty it means the archive is due now: read at once.
   */
  archiveDueMs?: number;
  /**
   * Handled messages the bus holds back (not yet archived, not in
   * `archive`). A backend whose read does not hide what it returns must
   * leave these out; one that hides them (visibility timeout) may ignore it.
   */
  held?: readonly number[];
}

/**
 * The wire side of a bus (pipecat's PgmqBackend, plus archive). One backend
 * may serve several buses, on the same or different channels.
 */
export interface BusBackend {
  /** Allocates a queue for a new member of `channel`; returns its name. */
  join(channel: string): Promise<string>;
  /** Sends `message` to every other member of `channel`; returns the message id per peer reached. */
  publish(
    channel: string,
    myQueue: string,
    message: JsonValue,
    options?: BackendPublishOptions,
  ): Promise<number[]>;
  /** Long-polls the member's queue; resolves with [] when nothing came within `maxPollSeconds`. */
  read(queue: string, options: BackendReadOptions): Promise<BackendMessage[]>;
  /** Archives handled messages; returns the ids that were archived. */
  archive(queue: string, channel: string, msgIds: readonly number[]): Promise<number[]>;
  /**
   * True when `read` archives `options.archive` in the statement that
   * reads: the bus then hands its handled messages to the next read instead
   * of archiving them in a statement of their own.
   */
  readonly archivesOnRead?: boolean;
  /**
   * True while the member's reader is woken by notifications. The bus then
   * keeps handled messages off the reads that answer a wake-up (an archive
   * never delays a delivery) and hands them to a later read, at most
   * ARCHIVE_DELAY_MS or one batch later (`archiveDueMs`). Without it every
   * read carries what was handled before it (`archivesOnRead`).
   */
  listening?(queue: string): boolean;
  /** Leaves the channel and drops the member's queue. */
  leave(queue: string, channel: string): Promise<void>;
}

/** The arguments of `BusBackend.publish`, for its implementations. */
export type PublishArgs = Parameters<BusBackend['publish']>;
