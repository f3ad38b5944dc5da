import type { Subscription } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import { Recovery, isTransientError, retryPolicy, type Health } from '../health.js';
import { Pause } from '../pause.js';
import type { QueueClient } from './client.js';
import type { GroupedReadMode } from './grouped.js';
import type { Message } from './types.js';
import { visibilityMs } from './engine/vt.js';
import { checkInt } from './validate.js';

/** How a consumer reads: plain `read`, or one of the FIFO group reads. */
export type ConsumeMode = 'read' | GroupedReadMode;

export interface ConsumeOptions {
  /** Milliseconds a fetched message stays invisible to other consumers (whole seconds in PGMQ: rounded up). Default 30000. */
  visibilityTimeoutMs?: number;
  /** @deprecated Use `visibilityTimeoutMs` (this alias goes in the next release). */
  visibilityTimeoutSeconds?: number;
  /** Messages fetched per read. Default 10. */
  batchSize?: number;
  /**
   * Longest wait after an empty read before reading again. Cut short by an
   * insert notification (see `listen`) and by the queue's next delayed or
   * expiring message (see `wakeOnVisible`). Default 250.
   */
  pollIntervalMs?: number;
  /** Only messages whose body contains this JSON (mode `read` only). */
  conditional?: unknown;
  /** Stops the consumer when aborted. */
  signal?: AbortSignal;
  /**
   * Longest wait after a lost connection (or a timeout) before reading again:
   * retries back off from 100 ms, doubling with jitter, up to this. Default 1000.
   */
  retryDelayMs?: number;
  /**
   * `read` (default), or FIFO: `grouped` (read_grouped: a group's messages
   * together, oldest group first), `roundRobin` (read_grouped_rr: fair
   * across groups), `head` (read_grouped_head: one message per group).
   */
  mode?: ConsumeMode;
  /**
   * LISTEN for the queue's insert notifications (and, in FIFO modes, delete
   * notifications, which unblock a group) on the driver's dedicated
   * connection. They only arrive once `enableNotifyInsert` (and
   * `enableNotifyDelete`) was called for the queue. When LISTEN fails (e.g. a
   * transaction-mode pooler) the consumer logs it and polls. Default true.
   */
  listen?: boolean;
  /**
   * After an empty read, ask the database for the earliest future `vt` (a
   * delayed message, or an in-flight one whose visibility timeout runs out)
   * and sleep only until then, so such messages are picked up within
   * milliseconds without tight polling. Default true.
   */
  wakeOnVisible?: boolean;
}

/**
 * A message handed out by a consumer, with the operations that finish it.
 *
 * Stale-read protection: every operation succeeds only while this delivery
 * still holds the message, i.e. nobody has read it since (its `readCount`
 * is the receipt). When the visibility timeout ran out and another consumer
 * read the message again, `delete()`, `archive()`, `extend()` and
 * `release()` return false and leave the message with its new holder.
 */
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

  /** Deletes the message (done). False when this delivery no longer holds it. */
  delete(): Promise<boolean> {
    return this.client.deleteIfHeld(this.queue, this.msgId, this.readCount);
  }
  /** Moves the message to the archive (done, kept). False when no longer held. */
  archive(): Promise<boolean> {
    return this.client.archiveIfHeld(this.queue, this.msgId, this.readCount);
  }
  /** Keeps the message invisible for `seconds` more from now. False when no longer held. */
  async extend(seconds: number): Promise<boolean> {
    const m = await this.client.setVisibilityTimeoutIfHeld(
      this.queue,
      this.msgId,
      this.readCount,
      seconds,
    );
    if (m) this.visibleAt = m.visibleAt;
    return m !== null;
  }
  /** Makes the message visible again at once (or after `delaySeconds`). False when no longer held. */
  async release(delaySeconds = 0): Promise<boolean> {
    const m = await this.client.setVisibilityTimeoutIfHeld(
      this.queue,
      this.msgId,
      this.readCount,
      delaySeconds,
    );
    return m !== null;
  }
}

/**
 * Consumes a queue as an async iterator. Leaving the `for await` loop, calling
 * `stop()` or aborting the signal ends it; messages that were fetched but not
 * yet handed out are made visible again at once.
 *
 * Waiting: after an empty read the consumer sleeps until the first of
 * (a) an insert/delete notification, (b) the queue's next future `vt`,
 * (c) `pollIntervalMs`. So with notifications enabled a new message arrives
 * in milliseconds, a delayed or expired one within milliseconds of its
 * time, and without notifications polling still finds everything.
 */
export class QueueConsumer<T> implements AsyncIterable<Delivery<T>> {
  private stopped = false;
  /** The wait after an empty read; a wake-up during a read ends the next wait at once. */
  private readonly pause = new Pause();
  private readonly vt: number;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly retryDelayMs: number;
  private readonly mode: ConsumeMode;
  private started = false;
  /** Resolves once the iteration has ended (see stop()). */
  private ended: Promise<void> | undefined;
  private subscriptions: Subscription[] = [];
  private listening = false;
  /** LISTEN failed with a connection error: try again when reads recover from an outage. */
  private relisten = false;
  private readonly recovery: Recovery;

  constructor(
    private readonly client: QueueClient,
    readonly queue: string,
    private readonly options: ConsumeOptions,
  ) {
    this.vt = visibilityMs(options);
    this.batchSize = checkInt('batchSize', options.batchSize ?? 10, { min: 1 });
    this.pollIntervalMs = checkInt('pollIntervalMs', options.pollIntervalMs ?? 250, { min: 1 });
    this.retryDelayMs = checkInt('retryDelayMs', options.retryDelayMs ?? 1000, { min: 1 });
    this.mode = options.mode ?? 'read';
    if (!['read', 'grouped', 'roundRobin', 'head'].includes(this.mode)) {
      throw new InvalidArgumentError(
        `mode must be read, grouped, roundRobin or head, got ${String(this.mode)}`,
      );
    }
    if (this.mode !== 'read' && options.conditional != null) {
      throw new InvalidArgumentError(
        'conditional works only with mode "read" (PGMQ group reads have no filter)',
      );
    }
    this.recovery = new Recovery({
      component: 'pgferry consumer',
      logger: client.logger,
      policy: retryPolicy(this.retryDelayMs),
      context: { queue },
    });
    if (options.signal?.aborted) this.stopped = true;
    options.signal?.addEventListener('abort', () => void this.stop(), { once: true });
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** True while the consumer receives notifications (false: it polls). */
  get isListening(): boolean {
    return this.listening;
  }

  /** running / reconnecting (reads fail and are retried) / stopped; see docs/reliability.md. */
  health(): Health {
    return this.recovery.health();
  }

  /**
   * Ends the iteration after the message being handled. The promise resolves
   * once the loop has ended (LISTEN closed, unhandled messages handed back);
   * at once when it never started. Do not await it inside the loop's body:
   * the loop ends only after the body returns.
   */
  stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    return this.ended ?? Promise.resolve();
  }

  /** Cuts the current wait short (e.g. on a notification that messages arrived). */
  wake(): void {
    this.pause.wake(true);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Delivery<T>> {
    if (this.started) throw new InvalidArgumentError('a Consumer can be iterated only once');
    this.started = true;
    let end!: () => void;
    this.ended = new Promise<void>((resolve) => (end = resolve));
    let buffer: Message<T>[] = [];
    this.recovery.start();
    try {
      if (this.options.listen ?? true) await this.startListening();
      while (!this.stopped) {
        if (buffer.length === 0) {
          let waitMs = this.pollIntervalMs;
          try {
            this.pause.forget();
            buffer = await this.fetch();
            const recovered = this.recovery.reconnecting;
            this.recovery.ok();
            // LISTEN failed while the database was away: try again now it is back
            // (not after every read: behind a pooler that refuses LISTEN it stays off).
            if (this.relisten && recovered) await this.startListening();
            if (buffer.length === 0 && (this.options.wakeOnVisible ?? true)) {
              const next = await this.client.msUntilNextVisible(this.queue);
              // +2 ms: timers may fire a little early against the database clock.
              if (next !== null) waitMs = Math.min(waitMs, next + 2);
            }
          } catch (err) {
            if (!isTransientError(err)) throw err;
            // Logged once per outage; a LISTEN reconnect (a wake-up) cuts the wait short.
            await this.wait(this.recovery.failed(err));
            continue;
          }
          if (buffer.length === 0) {
            await this.wait(waitMs);
            continue;
          }
        }
        if (this.stopped) break;
        yield new Delivery<T>(this.client, this.queue, buffer.shift()!);
      }
    } finally {
      this.recovery.stop();
      try {
        await this.stopListening();
        if (buffer.length > 0) await this.handBack(buffer);
      } finally {
        end();
      }
    }
  }

  private fetch(): Promise<Message<T>[]> {
    if (this.mode === 'read') {
      return this.client.read<T>(this.queue, {
        visibilityTimeoutMs: this.vt,
        qty: this.batchSize,
        conditional: this.options.conditional,
      });
    }
    return this.client.readGroupedBy<T>(this.queue, this.mode, {
      visibilityTimeoutMs: this.vt,
      qty: this.batchSize,
    });
  }

  private async startListening(): Promise<void> {
    const onNotify = (): void => this.wake();
    this.relisten = false;
    try {
      this.subscriptions.push(await this.client.listen(this.queue, onNotify, 'insert'));
      if (this.mode !== 'read')
        this.subscriptions.push(await this.client.listen(this.queue, onNotify, 'delete'));
      this.listening = true;
    } catch (err) {
      await this.stopListening();
      this.relisten = isTransientError(err);
      this.client.logger.warn(
        { err, queue: this.queue },
        'pgferry: consumer cannot LISTEN; falling back to polling every pollIntervalMs',
      );
    }
  }

  private async stopListening(): Promise<void> {
    const subs = this.subscriptions;
    this.subscriptions = [];
    this.listening = false;
    await Promise.all(subs.map((s) => s.close().catch(() => undefined)));
  }

  /** Makes fetched-but-unhandled messages visible again, only where we still hold them. */
  private async handBack(buffer: Message<T>[]): Promise<void> {
    await Promise.all(
      buffer.map((m) =>
        this.client
          .setVisibilityTimeoutIfHeld(this.queue, m.msgId, m.readCount, 0)
          .catch((err: unknown) => {
            this.client.logger.warn(
              { err, queue: this.queue, msgId: m.msgId },
              'pgferry: could not hand back a message',
            );
          }),
      ),
    );
  }

  private wait(ms: number): Promise<void> {
    return this.pause.for(ms, this.stopped);
  }
}

/** @deprecated The queue's consumer is {@link QueueConsumer} (docs/concepts.md); this name stays one release. */
export const Consumer = QueueConsumer;
/** @deprecated Use {@link QueueConsumer}. */
export type Consumer<T> = QueueConsumer<T>;
