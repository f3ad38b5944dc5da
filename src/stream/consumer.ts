import type { Queryable, QueryOptions, QueryResult, Subscription } from '../driver/types.js';
import { markNative } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import { Recovery, isTransientError, retryPolicy, type Health } from '../health.js';
import type { Logger } from '../logger.js';
import { traceProcess, traceReceive } from '../telemetry/tracing.js';
import { StreamClient, type StreamClientOptions } from './client.js';
import { StaleBatchError, mapStreamError } from './errors.js';
import { messageParams, toMessage, type MessageRow } from './rows.js';
import { isListenRefused } from '../driver/pooler.js';
import { acquireSharedTicker, type TickerOptions } from './ticker.js';
import type { Handler, StreamMessage } from './types.js';
import {
  checkConsumerName,
  checkNonNegative,
  checkPositiveInt,
  checkStreamName,
} from './validate.js';

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
  /** Redelivery delay of a failed event. Default 60. */
  retryAfterSeconds?: number;
  /** Cooperative mode: this worker's member name within the group `name`. */
  subconsumer?: string;
  /** Cooperative mode: take over a member's batch whose heartbeat is older than this. Default: never. */
  deadIntervalSeconds?: number;
  /** Cooperative mode: heartbeat period while handling a batch. Default: a third of `deadIntervalSeconds`, else 10000. */
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

const INT4_MAX = 2147483647;
const SAVEPOINT = 'pgferry_stream_handler';

/**
 * A handler's view of the batch transaction: the first statement it runs
 * opens a savepoint, so a handler that fails after writing is rolled back
 * alone and its event nacked, while the rest of the batch commits. Handlers
 * that never touch `tx` cost nothing.
 */
class HandlerTx implements Queryable {
  used = false;
  constructor(private readonly tx: Queryable) {
    markNative(this);
  }
  async query<R = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<R>> {
    if (!this.used) {
      this.used = true;
      await this.tx.query(`SAVEPOINT ${SAVEPOINT}`);
    }
    return this.tx.query<R>(text, params, options);
  }
}

/**
 * PgQue's high-level consumer: handlers per event type (`on(type)`, `'*'`
 * catch-all), one transaction per batch (receive → handlers → nack of failed
 * events → ack), LISTEN wake-up with polling fallback, cooperative mode.
 */
export class StreamConsumer<T = unknown> {
  readonly client: StreamClient;
  readonly stream: string;
  readonly name: string;
  private readonly ownsClient: boolean;
  private readonly handlers = new Map<string, Handler<T>>();
  private readonly opts: {
    maxMessages: number;
    unknownHandlerPolicy: 'nack' | 'ack';
    retryAfterSeconds: number;
    deadIntervalSeconds: number | null;
    heartbeatIntervalMs: number;
    pollIntervalMs: number;
  };
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private started: Promise<void> | undefined;
  private notified = false;
  private wakeUp: (() => void) | undefined;
  private requestTickSupported = true;
  private readonly recovery: Recovery;

  constructor(private readonly options: StreamConsumerOptions) {
    this.stream = checkStreamName(options.stream);
    this.name = checkConsumerName('consumer name', options.name, {
      noDot: options.subconsumer !== undefined,
    });
    if (options.subconsumer !== undefined)
      checkConsumerName('subconsumer name', options.subconsumer, { noDot: true });
    if (
      options.unknownHandlerPolicy !== undefined &&
      !['nack', 'ack'].includes(options.unknownHandlerPolicy)
    ) {
      throw new InvalidArgumentError(
        `unknownHandlerPolicy must be 'nack' or 'ack', got ${String(options.unknownHandlerPolicy)}`,
      );
    }
    const dead =
      options.deadIntervalSeconds === undefined
        ? null
        : checkNonNegative('deadIntervalSeconds', options.deadIntervalSeconds);
    this.opts = {
      maxMessages: checkPositiveInt('maxMessages', options.maxMessages ?? INT4_MAX),
      unknownHandlerPolicy: options.unknownHandlerPolicy ?? 'nack',
      retryAfterSeconds: checkNonNegative('retryAfterSeconds', options.retryAfterSeconds ?? 60),
      deadIntervalSeconds: dead,
      heartbeatIntervalMs: checkPositiveInt(
        'heartbeatIntervalMs',
        options.heartbeatIntervalMs ?? (dead ? Math.max(1, Math.floor((dead * 1000) / 3)) : 10_000),
      ),
      pollIntervalMs: checkPositiveInt('pollIntervalMs', options.pollIntervalMs ?? 1000),
    };
    this.ownsClient = !options.client;
    this.client = options.client ?? new StreamClient(options);
    this.logger = this.client.logger;
    this.recovery = new Recovery({
      component: 'pgferry stream consumer',
      logger: this.logger,
      policy: retryPolicy(this.opts.pollIntervalMs),
      context: { stream: this.stream, consumer: this.name },
    });
    if (options.signal) {
      if (options.signal.aborted) this.abort.abort();
      else options.signal.addEventListener('abort', () => void this.stop(), { once: true });
    }
  }

  /** Registers the handler of one event type, or of every type without its own (`'*'`). */
  on(type: string, handler: Handler<T>): this {
    if (typeof type !== 'string') throw new InvalidArgumentError('event type must be a string');
    if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
    this.handlers.set(type, handler);
    return this;
  }

  /** running / reconnecting (rounds fail and are retried with back-off) / stopped. */
  health(): Health {
    return this.recovery.health();
  }

  /** True between start() and the end of a graceful stop. */
  get isRunning(): boolean {
    return this.running !== undefined;
  }

  /**
   * Starts consuming and resolves once it runs (subscribed, listening, the
   * shared ticker acquired); rejects when it cannot start. The lifecycle verb
   * of every layer (docs/concepts.md). Until 0.x, `start()` resolved only at
   * stop: that is now {@link StreamConsumer.run}.
   */
  start(): Promise<void> {
    if (!this.running) {
      let ready!: () => void;
      const started = new Promise<void>((resolve) => (ready = resolve));
      this.running = this.loop(ready).finally(() => (this.running = undefined));
      // A failure while starting rejects start(); one after it, run() and stop().
      this.running.catch(() => undefined);
      this.started = Promise.race([started, this.running]);
    }
    return this.started!;
  }

  /**
   * start(), then consumes until stop(), the AbortSignal, SIGINT or SIGTERM;
   * resolves once the batch in hand is finished and every connection it
   * opened is released.
   */
  async run(): Promise<void> {
    await this.start();
    await this.running;
  }

  /** Graceful stop: handlers see their signal aborted; the current batch still commits or rolls back. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.wakeUp?.();
    await this.running;
  }

  private async loop(ready: () => void): Promise<void> {
    const onSignal = (): void => void this.stop();
    const handleSignals = this.options.handleSignals ?? true;
    if (handleSignals) {
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    }
    let listen: Subscription | undefined;
    let ticker: { release(): Promise<void> } | undefined;
    try {
      if (this.options.subscribe ?? true) await this.subscribe();
      if (this.options.listen ?? true) {
        // Refused behind a transaction pooler without a direct URL (the driver
        // warns once): the consumer then polls.
        listen = await this.client.driver
          .listen(`pgque_${this.stream}`, () => {
            this.notified = true;
            this.wakeUp?.();
          })
          .catch((err: unknown) => {
            if (!isListenRefused(err)) throw err;
            return undefined;
          });
      }
      const t = this.options.ticker ?? true;
      if (t) {
        ticker = acquireSharedTicker({
          ...(typeof t === 'object' ? t : {}),
          ...(this.client.connectionString
            ? { connectionString: this.client.connectionString }
            : {}),
          ...this.client.pooler,
          schema: this.client.schema,
          logger: this.logger,
        });
      }
      this.recovery.start();
      ready();
      while (!this.abort.signal.aborted) {
        try {
          this.notified = false;
          const r = await this.processNext();
          this.recovery.ok();
          if (r !== null || this.abort.signal.aborted) continue;
          await this.requestTick();
          if (!this.notified) await this.sleep(this.opts.pollIntervalMs);
        } catch (err) {
          if (this.abort.signal.aborted) break;
          this.options.onError?.(err);
          if (isTransientError(err)) {
            // Logged once per outage; the LISTEN reconnect's wake-up cuts the wait short.
            await this.sleep(this.recovery.failed(err));
            continue;
          }
          this.logger.error(
            { err, stream: this.stream, consumer: this.name },
            'pgferry stream consumer: batch failed',
          );
          await this.sleep(this.opts.pollIntervalMs);
        }
      }
    } finally {
      this.recovery.stop();
      if (handleSignals) {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      await listen?.close().catch(() => undefined);
      await ticker?.release();
      if (this.ownsClient) await this.client.close();
    }
  }

  private async subscribe(): Promise<void> {
    if (this.options.subconsumer !== undefined) {
      await this.client.subscribeSubconsumer(this.stream, this.name, this.options.subconsumer);
    } else {
      await this.client.subscribe(this.stream, this.name);
    }
  }

  /** Asks the elected ticker for a tick (pgferry's request_tick); harmless on a plain PgQue schema. */
  private async requestTick(): Promise<void> {
    if (!this.requestTickSupported) return;
    try {
      await this.client.q(`SELECT @s@.request_tick($1)`, [this.stream], undefined, true);
    } catch (err) {
      const state = (err as { sqlState?: string }).sqlState;
      if (state === '42883' || state === '42501') {
        this.requestTickSupported = false; // not pgferry's engine, or no grant: tick NOTIFY and polling only
        return;
      }
      throw err;
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        if (this.wakeUp === wake) this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakeUp = wake;
    });
  }

  /**
   * One round: receives the next batch and handles it. Returns what was done,
   * or null when no batch was ready (an empty window is consumed and the
   * round repeated while more windows wait).
   */
  async processNext(): Promise<BatchResult | null> {
    for (;;) {
      const r =
        this.options.subconsumer === undefined ? await this.roundNormal() : await this.roundCoop();
      if (r !== 'empty') return r;
      if (!(await this.windowsPending())) return null;
    }
  }

  private roundNormal(): Promise<BatchResult | 'empty'> {
    return this.client.transaction(async (tx) => {
      const rows = await traceReceive(this.stream, () =>
        this.query<MessageRow>(tx, `SELECT * FROM @s@.receive($1, $2, $3)`, [
          this.stream,
          this.name,
          this.opts.maxMessages,
        ]),
      );
      if (rows.length === 0) return 'empty';
      return this.handleBatch(
        tx,
        rows.map((r) => toMessage<T>(r)),
      );
    });
  }

  private async roundCoop(): Promise<BatchResult | 'empty'> {
    // Allocation commits on its own: other members then see the batch as
    // taken (and can take it over once its heartbeat is older than
    // deadIntervalSeconds), and the heartbeat below is visible to them.
    const rows = await traceReceive(this.stream, () =>
      this.client.q<MessageRow>(
        `SELECT * FROM @s@.receive_coop($1, $2, $3, $4, make_interval(secs => $5))`,
        [
          this.stream,
          this.name,
          this.options.subconsumer,
          this.opts.maxMessages,
          this.opts.deadIntervalSeconds,
        ],
        undefined,
        true,
      ),
    );
    if (rows.length === 0) return 'empty';
    const heartbeat = setInterval(() => {
      this.client
        .touchSubconsumer(this.stream, this.name, this.options.subconsumer!)
        .catch((err: unknown) => {
          this.logger.warn({ err }, 'pgferry stream consumer: heartbeat failed');
        });
    }, this.opts.heartbeatIntervalMs);
    try {
      return await this.client.transaction((tx) =>
        this.handleBatch(
          tx,
          rows.map((r) => toMessage<T>(r)),
        ),
      );
    } finally {
      clearInterval(heartbeat);
    }
  }

  private async handleBatch(tx: Queryable, messages: StreamMessage<T>[]): Promise<BatchResult> {
    const batchId = messages[0]!.batchId;
    let nacked = 0;
    for (const msg of messages) {
      const handler =
        (msg.type !== null ? this.handlers.get(msg.type) : undefined) ?? this.handlers.get('*');
      if (!handler) {
        if (this.opts.unknownHandlerPolicy === 'ack') {
          this.logger.warn(
            { stream: this.stream, type: msg.type, msgId: msg.msgId },
            'pgferry stream consumer: no handler, skipped',
          );
          continue;
        }
        await this.nack(tx, msg, `no handler for event type ${JSON.stringify(msg.type)}`);
        nacked++;
        continue;
      }
      const htx = new HandlerTx(tx);
      try {
        const job = {
          id: msg.msgId,
          task: this.stream,
          consumerGroup: this.name,
          attempt: (msg.retryCount ?? 0) + 1,
          headers: {},
        };
        await traceProcess(job, () =>
          handler(msg, { tx: htx, batchId, signal: this.abort.signal }),
        );
        if (htx.used) await tx.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      } catch (err) {
        if (htx.used) await tx.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
        this.logger.warn(
          { err, stream: this.stream, msgId: msg.msgId, type: msg.type },
          'pgferry stream consumer: handler failed, nacked',
        );
        await this.nack(tx, msg, err instanceof Error ? err.message : String(err));
        nacked++;
      }
    }
    const ack = await this.query<{ r: number }>(tx, `SELECT @s@.ack($1) AS r`, [batchId]);
    if (ack[0]!.r !== 1) {
      // The batch was finished elsewhere or taken over (cooperative mode):
      // roll back whatever the handlers wrote; the new owner redoes it.
      throw new StaleBatchError(batchId);
    }
    return { batchId, events: messages.length, nacked };
  }

  private async nack(tx: Queryable, msg: StreamMessage<T>, reason: string): Promise<void> {
    await this.query(
      tx,
      `SELECT @s@.nack($1, ROW($2, $3, $4, $5, $6, $7, $8, $9, $10, $11)::@s@.message, make_interval(secs => $12), $13)`,
      [msg.batchId, ...messageParams(msg), this.opts.retryAfterSeconds, reason],
    );
  }

  /** Whether ticks beyond this consumer's (or group's) cursor exist. Readers may SELECT the catalog. */
  private async windowsPending(): Promise<boolean> {
    const rows = await this.client.q<{ p: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM @s@.subscription s
                        JOIN @s@.queue q ON q.queue_id = s.sub_queue
                        JOIN @s@.consumer c ON c.co_id = s.sub_consumer
                        JOIN @s@.tick t ON t.tick_queue = s.sub_queue AND t.tick_id > s.sub_last_tick
                       WHERE q.queue_name = $1 AND c.co_name = $2) AS p`,
      [this.stream, this.name],
      undefined,
      true,
    );
    return rows[0]!.p;
  }

  private async query<R>(tx: Queryable, text: string, params: unknown[]): Promise<R[]> {
    try {
      const res = await tx.query<R>(text.replaceAll('@s@', this.schemaIdent), params, {
        prepare: true,
      });
      return res.rows;
    } catch (err) {
      throw mapStreamError(err);
    }
  }

  private get schemaIdent(): string {
    return `"${this.client.schema.replace(/"/g, '""')}"`;
  }
}

/** @deprecated The stream's consumer is {@link StreamConsumer} (docs/concepts.md); this name stays one release. */
export const Consumer = StreamConsumer;
/** @deprecated Use {@link StreamConsumer}. */
export type Consumer<T = unknown> = StreamConsumer<T>;
