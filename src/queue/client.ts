import type { Subscription } from '../driver/types.js';
import { QueueConsumer, type ConsumeOptions } from './consumer.js';
import { QueueClientReliability } from './reliability.js';
import type { BatchHandler, ProcessBatchOptions } from './process.js';
import type * as Q from './types.js';
import { checkQueueName } from './validate.js';
import * as life from './lifecycle.js';
import * as msg from './messaging.js';
import { finishIfHeld, setVtIfHeld, type FinishIfHeld } from './held.js';
import { TypedQueue } from './typed-queue.js';
// FIFO groups, topics, notifications (issue 4 part A).
import {
  GROUPED_READS,
  groupedReadFunction,
  type GroupedReads,
  type GroupedReadMode,
  type GroupedReadOptions,
  type GroupedReadWithPollOptions,
} from './grouped.js';
import {
  listThrottles,
  listen,
  notifyOp,
  NOTIFY_EVENTS,
  type NotifyEvent,
  type NotifyMethods,
} from './notify.js';
import {
  TopicSql,
  type SendBatchTopicOptions,
  type SendTopicOptions,
  type TopicBinding,
  type TopicRoute,
  type TopicSendResult,
} from './topics.js';
export { TypedQueue } from './typed-queue.js';
export type { QueueClientOptions } from './base.js';

type Ids = number | readonly number[];

/** Sets methods on a prototype as a class body does (not enumerable). */
function define(proto: object, methods: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(methods)) {
    Object.defineProperty(proto, name, { value, writable: true, configurable: true });
  }
}
type Throttle = Q.TxOption & { throttleIntervalMs?: number };

/**
 * The queue client: PGMQ's API, typed. Every method takes `{ tx }` to run in
 * the caller's transaction (one of ours from `transaction()`, or a foreign
 * client such as a node-postgres `PoolClient` inside the caller's BEGIN).
 *
 * The class checks arguments and delegates: the operations live in
 * lifecycle.ts, messaging.ts, held.ts, notify.ts, topics.ts, partitions.ts,
 * dead-letters.ts, archive-retention.ts and fast-metrics.ts, and every
 * statement they run is written in engine/ (docs/internals.md).
 */
// The eight notification methods (NotifyMethods, notify.ts), the six FIFO
// group reads (GroupedReads, grouped.ts) and the two held-only finishes
// (FinishIfHeld, held.ts) are made once per event / mode / verb in the
// static block below, not written out again and again.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface QueueClient extends NotifyMethods, GroupedReads, FinishIfHeld {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class QueueClient extends QueueClientReliability {
  static {
    for (const [E, event] of NOTIFY_EVENTS) {
      const methods: ThisType<QueueClient> & Record<string, unknown> = {
        [`enableNotify${E}`](this: QueueClient, queue: string, options: Throttle = {}) {
          return this.notify('enable', event, queue, options, options.throttleIntervalMs);
        },
        [`disableNotify${E}`](this: QueueClient, queue: string, options: Q.TxOption = {}) {
          return this.notify('disable', event, queue, options);
        },
        [`updateNotify${E}`](
          this: QueueClient,
          queue: string,
          ms: number,
          options: Q.TxOption = {},
        ) {
          return this.notify('update', event, queue, options, ms);
        },
        [`listNotify${E}Throttles`](this: QueueClient, options: Q.TxOption = {}) {
          return listThrottles(this.engine, this.x(options), event);
        },
      };
      define(this.prototype, methods);
    }
    for (const how of ['delete', 'archive'] as const) {
      define(this.prototype, {
        [`${how}IfHeld`](
          this: QueueClient,
          queue: string,
          msgId: number,
          readCount: number,
          options: Q.TxOption = {},
        ) {
          checkQueueName(queue);
          return finishIfHeld(this.engine, this.x(options), how, queue, msgId, readCount);
        },
      });
    }
    for (const [M, mode] of GROUPED_READS) {
      define(this.prototype, {
        [`readGrouped${M}`](this: QueueClient, queue: string, options: GroupedReadOptions = {}) {
          return this.readGroupedBy(queue, mode, options);
        },
        [`readGrouped${M}WithPoll`](
          this: QueueClient,
          queue: string,
          options: GroupedReadWithPollOptions = {},
        ) {
          return this.readGroupedBy(queue, mode, options, true);
        },
      });
    }
  }

  /** A handle bound to one queue and payload type. */
  queue<T = unknown>(name: string): TypedQueue<T> {
    return new TypedQueue<T>(this, checkQueueName(name));
  }

  // --- queue management (lifecycle.ts) ------------------------------------

  async createQueue(queue: string, options: Q.CreateQueueOptions = {}): Promise<void> {
    checkQueueName(queue, { forCreate: true });
    await life.createQueue(this.engine, this.x(options), queue, options);
  }
  /** Drops the queue and its archive; false when it did not exist. */
  dropQueue(queue: string, options: Q.TxOption = {}): Promise<boolean> {
    return life.dropQueue(this.engine, this.x(options), checkQueueName(queue));
  }
  /** Deletes every message (not the archive); returns how many there were. */
  purgeQueue(queue: string, options: Q.TxOption = {}): Promise<number> {
    return life.purgeQueue(this.engine, this.x(options), checkQueueName(queue));
  }
  listQueues(options: Q.TxOption = {}): Promise<Q.QueueInfo[]> {
    return life.listQueues(this.engine, this.x(options));
  }
  /** Asks the database whether `queue` is an acceptable name to create (throws when not). */
  async validateQueueName(queue: string, options: Q.TxOption = {}): Promise<void> {
    checkQueueName(queue, { forCreate: true });
    await life.validateQueueName(this.engine, this.x(options), queue);
  }

  // --- sending, reading, finishing (messaging.ts) -------------------------

  async send<T>(queue: string, message: T, options: Q.SendOptions = {}): Promise<number> {
    checkQueueName(queue);
    return msg.send(this.engine, this.x(options), queue, message, options);
  }
  async sendBatch<T>(
    queue: string,
    messages: readonly T[],
    options: Q.SendBatchOptions = {},
  ): Promise<number[]> {
    checkQueueName(queue);
    return msg.sendBatch(this.engine, this.x(options), queue, messages, options);
  }
  async read<T = unknown>(queue: string, options: Q.ReadOptions = {}): Promise<Q.Message<T>[]> {
    return this.readBy<T>('read', queue, options, false);
  }
  /** Like read, but the database waits up to `maxPollMs` for messages. */
  async readWithPoll<T = unknown>(
    queue: string,
    options: Q.ReadWithPollOptions = {},
  ): Promise<Q.Message<T>[]> {
    return this.readBy<T>('read_with_poll', queue, options, true);
  }
  /** Reads and deletes in one step (at-most-once). */
  async pop<T = unknown>(queue: string, options: Q.PopOptions = {}): Promise<Q.Message<T>[]> {
    checkQueueName(queue);
    return msg.pop<T>(this.engine, this.x(options), queue, options);
  }
  /** Moves messages to the archive; returns whether it (or which of them) existed. */
  archive(queue: string, msgId: number, options?: Q.TxOption): Promise<boolean>;
  archive(queue: string, msgIds: readonly number[], options?: Q.TxOption): Promise<number[]>;
  async archive(queue: string, ids: Ids, options: Q.TxOption = {}): Promise<boolean | number[]> {
    checkQueueName(queue);
    return msg.finish(this.engine, this.x(options), 'archive', queue, ids);
  }
  /** Deletes messages for good; returns whether it (or which of them) existed. */
  delete(queue: string, msgId: number, options?: Q.TxOption): Promise<boolean>;
  delete(queue: string, msgIds: readonly number[], options?: Q.TxOption): Promise<number[]>;
  async delete(queue: string, ids: Ids, options: Q.TxOption = {}): Promise<boolean | number[]> {
    checkQueueName(queue);
    return msg.finish(this.engine, this.x(options), 'delete', queue, ids);
  }
  /**
   * Sets when messages become visible: `seconds` from now, or at a `Date`.
   * Returns the updated messages (ids that do not exist are absent).
   */
  async setVisibilityTimeout<T = unknown>(
    queue: string,
    ids: Ids,
    vt: number | Date,
    options: Q.TxOption = {},
  ): Promise<Q.Message<T>[]> {
    checkQueueName(queue);
    return msg.setVisibilityTimeout<T>(this.engine, this.x(options), queue, ids, vt);
  }

  // --- metrics (lifecycle.ts) ----------------------------------------------

  /**
   * Queue figures without scanning a large queue: exact when fast metrics are
   * enabled or the table is small, else estimated (`exact: false`); see
   * docs/queue.md. `{ exact: true }` runs PGMQ's `metrics()` (a full count).
   */
  async metrics(queue: string, options: Q.MetricsOptions = {}): Promise<Q.QueueMetrics> {
    checkQueueName(queue);
    return life.metrics(this.engine, this.x(options), queue, options.exact ?? false);
  }
  /** `metrics()` of every queue (skipping a queue whose metrics fail, as `metrics_all()`). */
  metricsAll(options: Q.MetricsOptions = {}): Promise<Q.QueueMetrics[]> {
    return life.metricsAll(this.engine, this.x(options), options.exact ?? false);
  }

  // --- FIFO groups, topics, notifications, held reads (issue 4 part A) ------

  /** Any group read by mode (what the FIFO consumer calls); rows in the function's order. */
  readGroupedBy<T = unknown>(
    queue: string,
    mode: GroupedReadMode,
    options: GroupedReadWithPollOptions = {},
    poll = false,
  ): Promise<Q.Message<T>[]> {
    checkQueueName(queue);
    // Without polling: one prepared statement (messaging.ts readGrouped).
    if (!poll) return msg.readGrouped<T>(this.engine, this.x(options), mode, queue, options);
    const fn = groupedReadFunction(mode, poll);
    return msg.readBy<T>(this.engine, this.x(options), fn, queue, options, {
      poll,
      conditional: false,
    });
  }
  /** `create_fifo_index(queue)`: GIN index on headers. */
  async createFifoIndex(queue: string, options: Q.TxOption = {}): Promise<void> {
    checkQueueName(queue);
    await this.engine.call(this.x(options), 'create_fifo_index', [[queue, 'text']]);
  }
  /** `create_fifo_indexes_all()`. */
  async createFifoIndexesAll(options: Q.TxOption = {}): Promise<void> {
    await this.engine.call(this.x(options), 'create_fifo_indexes_all', []);
  }

  /** Routes messages sent with a matching routing key to `queue` (`*` one word, `#` any). */
  async bindTopic(pattern: string, queue: string, options: Q.TxOption = {}): Promise<void> {
    await this.topics.bind(this.x(options), pattern, queue);
  }
  async unbindTopic(pattern: string, queue: string, options: Q.TxOption = {}): Promise<boolean> {
    return this.topics.unbind(this.x(options), pattern, queue);
  }
  /** All bindings (newest first), or those of `options.queue`. */
  async listTopicBindings(options: Q.TxOption & { queue?: string } = {}): Promise<TopicBinding[]> {
    return this.topics.list(this.x(options), options.queue);
  }
  /** The bindings a routing key matches, by pattern. */
  async testRouting(routingKey: string, options: Q.TxOption = {}): Promise<TopicRoute[]> {
    return this.topics.testRouting(this.x(options), routingKey);
  }
  /** Throws InvalidArgumentError with PGMQ's message when the key is not valid. */
  async validateRoutingKey(routingKey: string, options: Q.TxOption = {}): Promise<void> {
    await this.topics.validate(this.x(options), 'routing_key', routingKey);
  }
  async validateTopicPattern(pattern: string, options: Q.TxOption = {}): Promise<void> {
    await this.topics.validate(this.x(options), 'topic_pattern', pattern);
  }
  /** Sends to every queue bound to a matching pattern; returns how many queues got it. */
  async sendTopic<T>(
    routingKey: string,
    message: T,
    options: SendTopicOptions = {},
  ): Promise<number> {
    return this.topics.send(this.x(options), routingKey, message, options);
  }
  async sendBatchTopic<T>(
    routingKey: string,
    messages: readonly T[],
    options: SendBatchTopicOptions = {},
  ): Promise<TopicSendResult[]> {
    return this.topics.sendBatch(this.x(options), routingKey, messages, options);
  }

  /** LISTENs for the queue's insert (or delete) notifications on the driver's dedicated connection. */
  listen(queue: string, handler: () => void, event: NotifyEvent = 'insert'): Promise<Subscription> {
    checkQueueName(queue);
    return listen(this.driver, this.schema, queue, event, handler);
  }
  /** `listen(queue, handler, 'insert')`. Notifications arrive only after `enableNotifyInsert`. */
  onInsert(queue: string, handler: () => void): Promise<Subscription> {
    return this.listen(queue, handler, 'insert');
  }

  // --- held-only finishing (held.ts) -----------------------------------------

  /** Sets vt (seconds from now, or a Date) only if the read still holds it; null otherwise. */
  async setVisibilityTimeoutIfHeld<T = unknown>(
    queue: string,
    msgId: number,
    readCount: number,
    vt: number | Date,
    options: Q.TxOption = {},
  ): Promise<Q.Message<T> | null> {
    checkQueueName(queue);
    return setVtIfHeld<T>(this.engine, this.x(options), queue, msgId, readCount, vt);
  }
  /** Milliseconds (database clock) until the queue's earliest future vt; null when none. */
  async msUntilNextVisible(queue: string, options: Q.TxOption = {}): Promise<number | null> {
    checkQueueName(queue);
    return this.engine.held.msUntilNextVisible(this.x(options), queue);
  }

  // --- transaction-held batches, consuming ----------------------------------

  /**
   * Locks up to `qty` visible messages (FOR UPDATE SKIP LOCKED, no visibility
   * timeout), runs `handler` with them and the transaction, then deletes or
   * archives them and commits — all in one transaction. If the handler
   * throws, the transaction rolls back and the messages are visible again at
   * once (their read_ct unchanged). Returns how many messages were handled
   * (0 when none were visible; the handler is then not called).
   */
  async processBatch<T = unknown>(
    queue: string,
    handler: BatchHandler<T>,
    options: ProcessBatchOptions = {},
  ): Promise<number> {
    checkQueueName(queue);
    return msg.processBatch<T>(this.engine, this.driver, queue, handler, options);
  }

  /**
   * An async iterator over the queue's messages. It reads in batches, waits
   * (long-polls) when the queue is empty, stops when `signal` aborts or the
   * loop is left, and hands back messages it fetched but did not yield.
   */
  consume<T = unknown>(queue: string, options: ConsumeOptions = {}): QueueConsumer<T> {
    checkQueueName(queue);
    return new QueueConsumer<T>(this, queue, options);
  }

  // --- internals -------------------------------------------------------------

  private readBy<T>(fn: string, queue: string, options: Q.ReadWithPollOptions, poll: boolean) {
    checkQueueName(queue);
    // `read` is traced (a receive span when tracing is on); the polling read is not.
    const how = { poll, conditional: true, traced: !poll };
    return msg
      .readBy<T>(this.engine, this.x(options), fn, queue, options, how)
      .then((rows) => rows.sort(msg.byMsgId));
  }

  private async notify(
    op: 'enable' | 'disable' | 'update',
    event: NotifyEvent,
    queue: string,
    options: Q.TxOption,
    throttleIntervalMs?: number,
  ): Promise<void> {
    checkQueueName(queue);
    await notifyOp(this.engine, this.x(options), op, event, queue, throttleIntervalMs);
  }

  private topicSql?: TopicSql;
  private get topics(): TopicSql {
    return (this.topicSql ??= new TopicSql(this.engine));
  }
}
