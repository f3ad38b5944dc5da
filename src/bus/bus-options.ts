import type { Logger } from '../logger.js';
import type { BusSerializer } from './serializer.js';
import type { BusBackend } from './types.js';

export interface BusOptions<T> {
  /** Where messages travel: `DirectBackend` (trusting peers) or `IsolatedBackend`. */
  backend: BusBackend;
  /** The channel to join. Any text; with the isolated backend, knowing it is the capability. */
  channel: string;
  /**
   * Milliseconds a fetched message stays hidden before it is delivered again
   * (if not archived); whole seconds in the database, rounded up. Default 30000.
   */
  visibilityTimeoutMs?: number;
  /** @deprecated Use `visibilityTimeoutMs` (this alias goes in the next release). */
  visibilityTimeoutSeconds?: number;
  /** Messages fetched per read. Default 10. */
  batchSize?: number;
  /** Re-check interval for the database-side long-poll when LISTEN is unavailable, and the first wait after a failed read. Default 100. */
  pollIntervalMs?: number;
  /** Failed reads back off (doubling with jitter, from `pollIntervalMs`) up to this. Default 5000. */
  maxRetryDelayMs?: number;
  /** Longest single wait for messages before reading again (whole seconds, rounded up; at most an hour). Default 5000. */
  maxPollMs?: number;
  /** @deprecated Use `maxPollMs` (this alias goes in the next release). */
  maxPollSeconds?: number;
  /** Message ↔ JSON. Default `new JsonSerializer()`. */
  serializer?: BusSerializer<T>;
  /** Messages for which this returns true are delivered to this bus's own subscribers only, never to the database. */
  isLocalOnly?: (message: T) => boolean;
  /** pino-compatible. Default: silent. */
  logger?: Logger;
}

export interface BusMessageContext {
  channel: string;
  /** The message's id in this member's queue; null for a local-only message. */
  msgId: number | null;
  /** True for a local-only message (never left this process). */
  local: boolean;
}

export type BusHandler<T> = (message: T, context: BusMessageContext) => void | Promise<void>;

/** Counters since the bus was made. */
export interface BusStats {
  /** Publishes that reached the backend (including those with no peers). */
  published: number;
  /** Publishes that were dropped: before `start`, after `stop`, unserialisable, or the backend failed. */
  publishFailures: number;
  /** Messages read from this member's queue. */
  received: number;
  /** Handler calls that threw or rejected. */
  handlerErrors: number;
  /** Messages the serializer could not decode (archived unhandled). */
  decodeErrors: number;
  /** Reads that failed (retried with back-off from `pollIntervalMs` up to `maxRetryDelayMs`). */
  readErrors: number;
  /** Archive calls that failed (the messages come back after the visibility timeout). */
  archiveErrors: number;
  /** Times the member re-joined after its queue vanished (left by someone else, or reaped). */
  rejoins: number;
  /** Local-only messages delivered. */
  localMessages: number;
}
