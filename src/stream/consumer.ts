import type { Queryable, Subscription } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import { Recovery, isTransientError, retryPolicy, type Health } from '../health.js';
import type { Logger } from '../logger.js';
import { traceReceive } from '../telemetry/tracing.js';
import { isListenRefused } from '../driver/pooler.js';
import { BatchHandler } from './batch-handler.js';
import { RECEIVE_COOP_SQL, StreamClient } from './client.js';
import {
  consumerSettings,
  type BatchResult,
  type ConsumerSettings,
  type StreamConsumerOptions,
} from './consumer-options.js';
import { toSeconds } from './durations.js';
import { Pause } from '../pause.js';
import { toMessage, type MessageRow } from './rows.js';
import { acquireSharedTicker } from './shared-ticker.js';
import type { Handler } from './types.js';

export type { BatchResult, StreamConsumerOptions };

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
  private readonly settings: ConsumerSettings;
  private readonly batches: BatchHandler<T>;
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private started: Promise<void> | undefined;
  private notified = false;
  private readonly pause = new Pause();
  private requestTickSupported = true;
  private readonly recovery: Recovery;

  constructor(private readonly options: StreamConsumerOptions) {
    this.settings = consumerSettings(options);
    this.stream = this.settings.stream;
    this.name = this.settings.name;
    this.ownsClient = !options.client;
    this.client = options.client ?? new StreamClient(options);
    this.logger = this.client.logger;
    this.batches = new BatchHandler(
      this.client,
      this.settings,
      this.handlers,
      this.abort.signal,
      this.logger,
    );
    this.recovery = new Recovery({
      component: 'pgferry stream consumer',
      logger: this.logger,
      policy: retryPolicy(this.settings.pollIntervalMs),
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
    this.pause.wake();
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
      if (this.options.listen ?? true) listen = await this.listen();
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
      while (!this.abort.signal.aborted) await this.round();
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

  /** One pass of the loop: a batch, else a tick request and a wait; errors retried. */
  private async round(): Promise<void> {
    const poll = this.settings.pollIntervalMs;
    try {
      this.notified = false;
      const r = await this.processNext();
      this.recovery.ok();
      if (r !== null || this.abort.signal.aborted) return;
      await this.requestTick();
      if (!this.notified) await this.sleep(poll);
    } catch (err) {
      if (this.abort.signal.aborted) return;
      this.options.onError?.(err);
      if (isTransientError(err)) {
        // Logged once per outage; the LISTEN reconnect's wake-up cuts the wait short.
        await this.sleep(this.recovery.failed(err));
        return;
      }
      this.logger.error(
        { err, stream: this.stream, consumer: this.name },
        'pgferry stream consumer: batch failed',
      );
      await this.sleep(poll);
    }
  }

  /**
   * LISTENs for the stream's ticks. Refused behind a transaction pooler
   * without a direct URL (the driver warns once): the consumer then polls.
   */
  private listen(): Promise<Subscription | undefined> {
    return this.client.driver
      .listen(`pgque_${this.stream}`, () => {
        this.notified = true;
        this.pause.wake();
      })
      .catch((err: unknown) => {
        if (!isListenRefused(err)) throw err;
        return undefined;
      });
  }

  private async subscribe(): Promise<void> {
    if (this.settings.subconsumer !== undefined) {
      await this.client.subscribeSubconsumer(this.stream, this.name, this.settings.subconsumer);
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
    return this.pause.for(ms, this.abort.signal.aborted);
  }

  /**
   * One round: receives the next batch and handles it. Returns what was done,
   * or null when no batch was ready (an empty window is consumed and the
   * round repeated while more windows wait).
   */
  async processNext(): Promise<BatchResult | null> {
    for (;;) {
      const r =
        this.settings.subconsumer === undefined
          ? await this.roundNormal()
          : await this.roundCoop(this.settings.subconsumer);
      if (r !== 'empty') return r;
      if (!(await this.windowsPending())) return null;
    }
  }

  private roundNormal(): Promise<BatchResult | 'empty'> {
    return this.client.transaction(async (tx) => {
      const rows = await this.receive(
        `SELECT * FROM @s@.receive($1, $2, $3)`,
        [this.stream, this.name, this.settings.maxMessages],
        tx,
      );
      if (rows.length === 0) return 'empty';
      return this.batches.handle(
        tx,
        rows.map((r) => toMessage<T>(r)),
      );
    });
  }

  private async roundCoop(subconsumer: string): Promise<BatchResult | 'empty'> {
    // Allocation commits on its own: other members then see the batch as
    // taken (and can take it over once its heartbeat is older than
    // deadIntervalMs), and the heartbeat below is visible to them.
    const rows = await this.receive(RECEIVE_COOP_SQL, [
      this.stream,
      this.name,
      subconsumer,
      this.settings.maxMessages,
      toSeconds(this.settings.deadIntervalMs),
    ]);
    if (rows.length === 0) return 'empty';
    const heartbeat = setInterval(() => {
      this.client.touchSubconsumer(this.stream, this.name, subconsumer).catch((err: unknown) => {
        this.logger.warn({ err }, 'pgferry stream consumer: heartbeat failed');
      });
    }, this.settings.heartbeatIntervalMs);
    try {
      return await this.client.transaction((tx) =>
        this.batches.handle(
          tx,
          rows.map((r) => toMessage<T>(r)),
        ),
      );
    } finally {
      clearInterval(heartbeat);
    }
  }

  private receive(text: string, params: unknown[], tx?: Queryable): Promise<MessageRow[]> {
    return traceReceive(this.stream, () => this.client.q<MessageRow>(text, params, tx, true));
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
}

/** @deprecated The stream's consumer is {@link StreamConsumer} (docs/concepts.md); this name stays one release. */
export const Consumer = StreamConsumer;
/** @deprecated Use {@link StreamConsumer}. */
export type Consumer<T = unknown> = StreamConsumer<T>;
