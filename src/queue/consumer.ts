import { ConnectionError } from '../errors.js';
import type { QueueClient } from './client.js';
import type { Message } from './types.js';
import { checkInt } from './validate.js';

export interface ConsumeOptions {
  /** Seconds a fetched message stays invisible to other consumers. Default 30. */
  visibilityTimeoutSeconds?: number;
  /** Messages fetched per read. Default 10. */
  batchSize?: number;
  /** Wait after an empty read before the next one (cut short by `wake()`). Default 250. */
  pollIntervalMs?: number;
  /** Only messages whose body contains this JSON. */
  conditional?: unknown;
  /** Stops the consumer when aborted. */
  signal?: AbortSignal;
  /** Wait after a lost connection before reading again. Default 1000. */
  retryDelayMs?: number;
}

/** A message handed out by a consumer, with the operations that finish it. */
export class Delivery<T> implements Message<T> {
  readonly msgId: number;
  readonly readCount: number;
  readonly enqueuedAt: Date;
  readonly lastReadAt: Date | null;
  visibleAt: Date;
  readonly message: T;
  readonly headers: Message<T>['headers'];

  constructor(
    private readonly client: QueueClient,
    readonly queue: string,
    m: Message<T>,
  ) {
    this.msgId = m.msgId;
    this.readCount = m.readCount;
    this.enqueuedAt = m.enqueuedAt;
    this.lastReadAt = m.lastReadAt;
    this.visibleAt = m.visibleAt;
    this.message = m.message;
    this.headers = m.headers;
  }

  /** Deletes the message (done). */
  delete(): Promise<boolean> {
    return this.client.delete(this.queue, this.msgId);
  }
  /** Moves the message to the archive (done, kept). */
  archive(): Promise<boolean> {
    return this.client.archive(this.queue, this.msgId);
  }
  /** Keeps the message invisible for `seconds` more from now. */
  async extend(seconds: number): Promise<void> {
    const [m] = await this.client.setVisibilityTimeout(this.queue, this.msgId, seconds);
    if (m) this.visibleAt = m.visibleAt;
  }
  /** Makes the message visible again at once (or after `delaySeconds`) for another delivery. */
  async release(delaySeconds = 0): Promise<void> {
    await this.client.setVisibilityTimeout(this.queue, this.msgId, delaySeconds);
  }
}

/**
 * Consumes a queue as an async iterator. Leaving the `for await` loop, calling
 * `stop()` or aborting the signal ends it; messages that were fetched but not
 * yet handed out are made visible again at once.
 */
export class Consumer<T> implements AsyncIterable<Delivery<T>> {
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  private readonly vt: number;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly retryDelayMs: number;
  private started = false;

  constructor(
    private readonly client: QueueClient,
    readonly queue: string,
    private readonly options: ConsumeOptions,
  ) {
    this.vt = checkInt('visibilityTimeoutSeconds', options.visibilityTimeoutSeconds ?? 30, { min: 0 });
    this.batchSize = checkInt('batchSize', options.batchSize ?? 10, { min: 1 });
    this.pollIntervalMs = checkInt('pollIntervalMs', options.pollIntervalMs ?? 250, { min: 1 });
    this.retryDelayMs = checkInt('retryDelayMs', options.retryDelayMs ?? 1000, { min: 1 });
    if (options.signal?.aborted) this.stopped = true;
    options.signal?.addEventListener('abort', () => this.stop(), { once: true });
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Ends the iteration after the message being handled. */
  stop(): void {
    this.stopped = true;
    this.wake();
  }

  /** Cuts the current wait short (e.g. on a notification that messages arrived). */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Delivery<T>> {
    if (this.started) throw new Error('a Consumer can be iterated only once');
    this.started = true;
    let buffer: Message<T>[] = [];
    try {
      while (!this.stopped) {
        if (buffer.length === 0) {
          try {
            buffer = await this.client.read<T>(this.queue, {
              visibilityTimeoutSeconds: this.vt,
              qty: this.batchSize,
              conditional: this.options.conditional,
            });
          } catch (err) {
            if (!(err instanceof ConnectionError)) throw err;
            this.client.logger.warn({ err, queue: this.queue }, 'pgferry: consumer lost its connection; retrying');
            await this.wait(this.retryDelayMs);
            continue;
          }
          if (buffer.length === 0) {
            await this.wait(this.pollIntervalMs);
            continue;
          }
        }
        if (this.stopped) break;
        yield new Delivery<T>(this.client, this.queue, buffer.shift()!);
      }
    } finally {
      if (buffer.length > 0) {
        const ids = buffer.map((m) => m.msgId);
        await this.client.setVisibilityTimeout(this.queue, ids, 0).catch((err: unknown) => {
          this.client.logger.warn({ err, queue: this.queue, ids }, 'pgferry: could not hand back unconsumed messages');
        });
      }
    }
  }

  private wait(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        if (self.wakeUp === done) self.wakeUp = undefined;
        resolve();
      }
      this.wakeUp = done;
    });
  }
}
