import { InvalidArgumentError, QueueNotFoundError } from '../errors.js';
import { Recovery, type Health } from '../health.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { checkInt, durationMs, visibilityMs, wholeSeconds } from '../queue/index.js';
import type { TxOption } from '../driver/tx-option.js';
import { traceProcess, traceSend } from '../telemetry/tracing.js';
import { BusNotMemberError } from './errors.js';
import { JsonSerializer, type BusSerializer } from './serializer.js';
import type { BackendMessage, BusBackend } from './types.js';
import { ARCHIVE_DELAY_MS } from './wake.js';

export type { BusHandler, BusMessageContext, BusOptions, BusStats } from './bus-options.js';
import type { BusHandler, BusMessageContext, BusOptions, BusStats } from './bus-options.js';

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * A channel bus member (pipecat's PgmqBus): `start()` joins the channel and
 * starts a reader; `publish()` sends to every other member; subscribers get
 * what the others publish. Publishing never throws into the caller: a
 * failure is logged and counted in `stats`. Delivery is at least once: a
 * message is archived after its handlers ran (also when one threw, or when
 * it could not be decoded), so a member that crashes mid-batch sees the rest
 * again after the visibility timeout.
 */
export class Bus<T = unknown> {
  readonly channel: string;
  private readonly backend: BusBackend;
  private readonly serializer: BusSerializer<T>;
  private readonly logger: Logger;
  private readonly isLocalOnly: ((message: T) => boolean) | undefined;
  private readonly vt: number;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly maxPollSeconds: number;
  private readonly handlers = new Set<BusHandler<T>>();
  private readonly abort = new AbortController();
  private state: State = 'new';
  private myQueue: string | undefined;
  private reader: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly recovery: Recovery;
  private readonly counters: BusStats = {
    published: 0,
    publishFailures: 0,
    received: 0,
    handlerErrors: 0,
    decodeErrors: 0,
    readErrors: 0,
    archiveErrors: 0,
    rejoins: 0,
    localMessages: 0,
  };

  constructor(options: BusOptions<T>) {
    if (!options?.backend) throw new InvalidArgumentError('Bus needs a backend');
    if (typeof options.channel !== 'string')
      throw new InvalidArgumentError('Bus channel must be a string');
    this.backend = options.backend;
    this.channel = options.channel;
    this.serializer = options.serializer ?? new JsonSerializer<T>();
    this.logger = options.logger ?? silentLogger;
    this.isLocalOnly = options.isLocalOnly;
    this.vt = wholeSeconds(visibilityMs(options));
    this.batchSize = checkInt('batchSize', options.batchSize ?? 10, { min: 1 });
    this.pollIntervalMs = checkInt('pollIntervalMs', options.pollIntervalMs ?? 100, { min: 1 });
    this.maxPollSeconds = wholeSeconds(
      durationMs(options, 'maxPollMs', 'maxPollSeconds', { min: 0, maxSeconds: 3600 }) ?? 5000,
    );
    const maxRetry = checkInt('maxRetryDelayMs', options.maxRetryDelayMs ?? 5000, { min: 1 });
    this.recovery = new Recovery({
      component: 'pgferry bus',
      logger: this.logger,
      policy: { initialMs: Math.min(this.pollIntervalMs, maxRetry), maxMs: maxRetry },
      context: { channel: this.channel },
    });
  }

  /** running / reconnecting (reads fail and are retried with back-off) / stopped. */
  health(): Health {
    return this.recovery.health();
  }

  /** This member's queue once started (opaque with the isolated backend). */
  get queue(): string | undefined {
    return this.myQueue;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  get stats(): Readonly<BusStats> {
    return { ...this.counters };
  }

  /** Joins the channel and starts the reader. Throws if joining fails (nothing is left behind). */
  async start(): Promise<void> {
    if (this.state !== 'new')
      throw new InvalidArgumentError(`bus already ${this.state}; make a new Bus to join again`);
    this.state = 'starting';
    this.starting = this.join();
    await this.starting;
  }

  /** start(), then resolves once the bus has been stopped (stop()) and has left the channel. */
  async run(): Promise<void> {
    await this.start();
    await new Promise<void>((resolve) => {
      if (this.abort.signal.aborted) resolve();
      else this.abort.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await this.stop();
  }

  private async join(): Promise<void> {
    let queue: string;
    try {
      queue = await this.backend.join(this.channel);
    } catch (err) {
      this.state = 'stopped';
      throw err;
    }
    this.myQueue = queue;
    if (this.abort.signal.aborted) {
      // stop() was called while joining: leave again at once.
      await this.backend.leave(queue, this.channel).catch((err: unknown) => {
        this.logger.error({ err, channel: this.channel, queue }, 'pgferry bus: leave failed');
      });
      this.state = 'stopped';
      return;
    }
    this.state = 'running';
    this.recovery.start();
    this.reader = this.readLoop();
    this.logger.info({ channel: this.channel, queue }, 'pgferry bus: joined');
  }

  /** Adds a handler for messages from the other members (and local-only ones); returns a function that removes it. */
  subscribe(handler: BusHandler<T>): () => void {
    if (typeof handler !== 'function')
      throw new InvalidArgumentError('a bus handler must be a function');
    this.handlers.add(handler);
    return () => {
      this.handlers.delete(handler);
    };
  }

  /**
   * Sends `message` to every other member of the channel (or, when
   * `isLocalOnly` says so, to this bus's subscribers only). Never throws:
   * resolves with the number of members reached, 0 when it failed (logged,
   * counted in `stats.publishFailures`).
   *
   * With `{ tx }` the message is sent in your transaction: the members get it
   * only if it commits (a rolled-back transaction delivers nothing). A
   * failure then rejects, since it aborted your transaction anyway. A
   * local-only message is delivered at once, transaction or not.
   */
  async publish(message: T, options: TxOption = {}): Promise<number> {
    let local = false;
    try {
      local = this.isLocalOnly?.(message) ?? false;
    } catch (err) {
      return this.publishFailed(err, 'isLocalOnly threw', options);
    }
    if (local) {
      await this.publishLocal(message);
      return 0;
    }
    const queue = this.myQueue;
    if (this.state !== 'running' || queue === undefined) {
      this.counters.publishFailures++;
      this.logger.warn(
        { channel: this.channel, state: this.state },
        'pgferry bus: publish on a bus that is not running; dropped',
      );
      if (options.tx) {
        throw new InvalidArgumentError(`bus ${this.state}: publish needs a running bus`);
      }
      return 0;
    }
    try {
      const payload = this.serializer.encode(message);
      // A send span when tracing is on; its trace context travels in the message headers.
      const ids = await traceSend(this.channel, null, (headers) =>
        this.backend.publish(this.channel, queue, payload, { tx: options.tx, headers }),
      );
      this.counters.published++;
      return ids.length;
    } catch (err) {
      return this.publishFailed(err, 'publish failed', options);
    }
  }

  private publishFailed(err: unknown, what: string, options: TxOption): number {
    this.counters.publishFailures++;
    this.logger.error({ err, channel: this.channel }, `pgferry bus: ${what}; dropped`);
    if (options.tx) throw err;
    return 0;
  }

  /** Delivers `message` to this bus's own subscribers only; the database never sees it. */
  async publishLocal(message: T): Promise<void> {
    this.counters.localMessages++;
    await this.dispatch(message, { channel: this.channel, msgId: null, local: true });
  }

  /** Stops the reader, leaves the channel and drops this member's queue. Idempotent. */
  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private async doStop(): Promise<void> {
    this.abort.abort();
    await this.starting?.catch(() => undefined);
    const wasRunning = this.state === 'running';
    if (this.state === 'stopped') return;
    this.state = 'stopping';
    await this.reader;
    if (wasRunning && this.myQueue !== undefined) {
      try {
        await this.backend.leave(this.myQueue, this.channel);
      } catch (err) {
        this.logger.error(
          { err, channel: this.channel, queue: this.myQueue },
          'pgferry bus: leave failed',
        );
      }
    }
    this.state = 'stopped';
    this.recovery.stop();
    this.logger.info({ channel: this.channel, queue: this.myQueue }, 'pgferry bus: left');
  }

  private async readLoop(): Promise<void> {
    const signal = this.abort.signal;
    // Handled messages a later read archives (backends with archivesOnRead),
    // and since when the oldest of them waits.
    let handled: number[] = [];
    let handledAt = 0;
    while (!signal.aborted) {
      let batch: BackendMessage[];
      try {
        const queue = this.myQueue!;
        const { archive, archiveDueMs } = this.archivePlan(queue, handled, handledAt);
        batch = await this.backend.read(queue, {
          channel: this.channel,
          visibilityTimeoutSeconds: this.vt,
          batchSize: this.batchSize,
          maxPollSeconds: this.maxPollSeconds,
          pollIntervalMs: this.pollIntervalMs,
          signal,
          archive,
          held: archive.length > 0 ? [] : handled,
          ...(archiveDueMs === undefined ? {} : { archiveDueMs }),
        });
        if (archive.length > 0) handled = [];
        this.recovery.ok();
      } catch (err) {
        // Kept for the next read, unless the queue (and its messages) is gone.
        if (err instanceof BusNotMemberError || err instanceof QueueNotFoundError) handled = [];
        if (signal.aborted) break;
        await this.readFailed(err);
        continue;
      }
      // Stopping: the queue is dropped on leave, so what was just read goes with it.
      if (signal.aborted) break;
      if (batch.length === 0) continue;
      this.counters.received += batch.length;
      for (const m of batch) await this.handle(m);
      if (this.backend.archivesOnRead) {
        if (handled.length === 0) handledAt = Date.now();
        handled = handled.concat(batch.map((m) => m.msgId));
        continue;
      }
      try {
        await this.backend.archive(
          this.myQueue!,
          this.channel,
          batch.map((m) => m.msgId),
        );
      } catch (err) {
        this.counters.archiveErrors++;
        this.logger.error(
          { err, channel: this.channel },
          'pgferry bus: archive failed; messages will be delivered again',
        );
      }
    }
  }

  /**
   * What the next read archives. A member woken by notifications keeps its
   * handled messages off the reads that answer a wake-up, so an archive
   * never delays a delivery: they go with the first read once the oldest
   * has waited ARCHIVE_DELAY_MS or a batch's worth has gathered (or with a
   * read of their own when nothing comes). Otherwise every read carries
   * what was handled before it.
   */
  private archivePlan(
    queue: string,
    handled: number[],
    handledAt: number,
  ): { archive: number[]; archiveDueMs?: number } {
    if (handled.length === 0 || this.backend.listening?.(queue) !== true) {
      return { archive: handled };
    }
    const dueMs = ARCHIVE_DELAY_MS - (Date.now() - handledAt);
    if (handled.length >= this.batchSize || dueMs <= 0)
      return { archive: handled, archiveDueMs: 0 };
    return { archive: [], archiveDueMs: dueMs };
  }

  private async handle(m: BackendMessage): Promise<void> {
    let message: T;
    try {
      message = this.serializer.decode(m.message);
    } catch (err) {
      this.counters.decodeErrors++;
      this.logger.error(
        { err, channel: this.channel, msgId: m.msgId },
        'pgferry bus: undecodable message archived',
      );
      return;
    }
    // A process span when tracing is on, a child of the publisher's send span.
    await traceProcess(
      { id: m.msgId, task: this.channel, headers: m.headers, consumerGroup: this.myQueue },
      () => this.dispatch(message, { channel: this.channel, msgId: m.msgId, local: false }),
    );
  }

  private async dispatch(message: T, context: BusMessageContext): Promise<void> {
    for (const h of [...this.handlers]) {
      try {
        await h(message, context);
      } catch (err) {
        this.counters.handlerErrors++;
        this.logger.error(
          { err, channel: this.channel, msgId: context.msgId },
          'pgferry bus: handler failed; message archived',
        );
      }
    }
  }

  /**
   * A read failed: back off (logged once per outage, not per attempt); if
   * our queue vanished (reaped, dropped), join again.
   */
  private async readFailed(err: unknown): Promise<void> {
    this.counters.readErrors++;
    if (err instanceof BusNotMemberError || err instanceof QueueNotFoundError) {
      this.logger.warn(
        { err, channel: this.channel, queue: this.myQueue },
        'pgferry bus: membership lost; joining again',
      );
      const lost = this.myQueue!;
      // Releases what the backend still holds for the lost queue (its LISTEN).
      await this.backend.leave(lost, this.channel).catch(() => undefined);
      try {
        this.myQueue = await this.backend.join(this.channel);
        this.counters.rejoins++;
        return;
      } catch (joinErr) {
        err = joinErr;
      }
    }
    await delay(this.recovery.failed(err), this.abort.signal);
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
