import { InvalidArgumentError } from '../errors.js';
import type { StreamClient, StreamClientOptions } from './client.js';
import { durationMs } from './durations.js';
import type { TickerOptions } from './ticker-options.js';
import { checkConsumerName, checkPositiveInt, checkStreamName } from './validate.js';

export interface StreamConsumerOptions extends StreamClientOptions {
  /** A client to use (its driver and schema); otherwise one is made from the connection options. */
  client?: StreamClient;
  /** The stream (PgQue queue) to consume. */
  stream: string;
  /** The consumer name (its cursor); in cooperative mode the group's name. */
  name: string;
  /** Row limit per receive. Lower it only if it is >= the stream's largest batch: ack finishes the whole batch. Default 2147483647. */
  maxMessages?: number;
  /** Events of a type with no handler (and no `'*'`): `'nack'` (retry, then dead letter) or `'ack'` (log and skip). Default `'nack'`. */
  unknownHandlerPolicy?: 'nack' | 'ack';
  /** Redelivery delay of a failed event (the engine rounds it to whole seconds). Default 60000. */
  retryAfterMs?: number;
  /** @deprecated Use `retryAfterMs`; kept one release (giving both is an InvalidArgumentError). */
  retryAfterSeconds?: number;
  /** Cooperative mode: this worker's member name within the group `name`. */
  subconsumer?: string;
  /** Cooperative mode: take over a member's batch whose heartbeat is older than this. Default: never. */
  deadIntervalMs?: number;
  /** @deprecated Use `deadIntervalMs`; kept one release (giving both is an InvalidArgumentError). */
  deadIntervalSeconds?: number;
  /** Cooperative mode: heartbeat period while handling a batch. Default: a third of `deadIntervalMs`, else 10000. */
  heartbeatIntervalMs?: number;
  /** Fallback poll when no notification arrives. Default 1000. */
  pollIntervalMs?: number;
  /** Wake on the stream's tick NOTIFY (`LISTEN "pgque_<stream>"`). Default true. */
  listen?: boolean;
  /** Subscribe (or join the group) on start. Default true. */
  subscribe?: boolean;
  /** Take part in the elected ticker of this database (one per process, shared). Default true. */
  ticker?: boolean | Omit<TickerOptions, 'schema' | 'logger'>;
  /** Stops the consumer when aborted. */
  signal?: AbortSignal;
  /** Stop gracefully on SIGINT and SIGTERM while `start()` runs. Default true. */
  handleSignals?: boolean;
  /**
   * Called with errors of the consume loop. It retries: a lost connection or
   * timeout with back-off from 100 ms up to `pollIntervalMs`, others after `pollIntervalMs`.
   */
  onError?: (err: unknown) => void;
}

/** What one receive/dispatch/ack round did. */
export interface BatchResult {
  batchId: number;
  events: number;
  /** Events nacked (handler error or unknown type). */
  nacked: number;
}

/** A consumer's checked settings. */
export interface ConsumerSettings {
  stream: string;
  name: string;
  subconsumer: string | undefined;
  maxMessages: number;
  unknownHandlerPolicy: 'nack' | 'ack';
  retryAfterMs: number;
  deadIntervalMs: number | null;
  heartbeatIntervalMs: number;
  pollIntervalMs: number;
}

const INT4_MAX = 2147483647;

/** Checks a consumer's options (InvalidArgumentError) and fills in the defaults. */
export function consumerSettings(options: StreamConsumerOptions): ConsumerSettings {
  const stream = checkStreamName(options.stream);
  const coop = options.subconsumer !== undefined;
  const name = checkConsumerName('consumer name', options.name, { noDot: coop });
  if (coop) checkConsumerName('subconsumer name', options.subconsumer, { noDot: true });
  const policy = options.unknownHandlerPolicy;
  if (policy !== undefined && !['nack', 'ack'].includes(policy)) {
    throw new InvalidArgumentError(
      `unknownHandlerPolicy must be 'nack' or 'ack', got ${String(policy)}`,
    );
  }
  const dead = durationMs(options, 'deadIntervalMs', 'deadIntervalSeconds');
  return {
    stream,
    name,
    subconsumer: options.subconsumer,
    maxMessages: checkPositiveInt('maxMessages', options.maxMessages ?? INT4_MAX),
    unknownHandlerPolicy: policy ?? 'nack',
    retryAfterMs: durationMs(options, 'retryAfterMs', 'retryAfterSeconds', 60_000),
    deadIntervalMs: dead,
    heartbeatIntervalMs: checkPositiveInt(
      'heartbeatIntervalMs',
      options.heartbeatIntervalMs ?? (dead ? Math.max(1, Math.floor(dead / 3)) : 10_000),
    ),
    pollIntervalMs: checkPositiveInt('pollIntervalMs', options.pollIntervalMs ?? 1000),
  };
}
