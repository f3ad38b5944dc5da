import type { Driver, Executor, Queryable } from '../driver/types.js';
import { traceReceive, traceSend } from '../telemetry/tracing.js';
import { execute } from '../driver/types.js';
import { resolveDriver, type ConnectionOptions } from '../driver/resolve.js';
import { quoteIdent } from '../driver/quote.js';
import { InvalidArgumentError, explainLock } from '../errors.js';
import { checkLockTimeout, lockGuardFrom, withLockParam } from './lock-timeout.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { checkSchemaName, migrate, type MigrateResult } from '../migrate/migrator.js';
import { Consumer, type ConsumeOptions } from './consumer.js';
import type { BatchHandler, ProcessBatchOptions } from './process.js';
import {
  MESSAGE_COLUMNS,
  toMessage,
  toMetrics,
  toQueueInfo,
  type MessageRow,
  type MetricsRow,
  type QueueRow,
} from './rows.js';
import { QueueStatements, type VtSpec } from './statements.js';
import type {
  CreateQueueOptions,
  Message,
  PopOptions,
  QueueInfo,
  MetricsOptions,
  QueueMetrics,
  ReadOptions,
  ReadWithPollOptions,
  SendBatchOptions,
  SendOptions,
  TxOption,
} from './types.js';
import {
  checkDate,
  checkInt,
  checkMsgId,
  checkMsgIds,
  checkQueueName,
  toJson,
} from './validate.js';
// FIFO groups, topics, notifications, held-only finishing (issue 4 part A).
import type { Subscription } from '../driver/types.js';
import {
  createFifoIndexSql,
  readGroupedRows,
  type GroupedReadMode,
  type GroupedReadOptions,
  type GroupedReadWithPollOptions,
} from './grouped.js';
import { HeldStatements } from './held.js';
import { NotifySql, type NotifyEvent, type NotifyThrottle } from './notify.js';
import {
  TopicSql,
  type SendBatchTopicOptions,
  type SendTopicOptions,
  type TopicBinding,
  type TopicRoute,
  type TopicSendResult,
} from './topics.js';
// Partitions, dead letters, archive retention, fast metrics, maintenance (issue 4 part B).
import { getArchiveRetention, setArchiveRetention } from './archive-retention.js';
import * as dl from './dead-letters.js';
import { disableFastMetrics, enableFastMetrics, fastMetricsEnabled } from './fast-metrics.js';
import { MaintenanceScheduler, type MaintenanceSchedulerOptions } from './maintenance.js';
import * as parts from './partitions.js';

export interface QueueClientOptions extends ConnectionOptions {
  /**
   * How long delete, archive, set_vt (and their `…IfHeld` forms), purge and
   * drop wait for a lock another transaction holds before failing with
   * LockTimeoutError. Default 5000; 0 leaves the server's `lock_timeout`.
   */
  lockTimeoutMs?: number;
  /** Schema of the queue engine. Default `pgmq`. */
  schema?: string;
  /** pino-compatible logger. Default: silent. */
  logger?: Logger;
  /** The pooler in front of the database; 'transaction' turns off named prepared statements (see docs/deployment.md). Default 'none'. */
  pooler?: 'transaction' | 'session' | 'none';
  /** A direct (unpooled) URL for LISTEN when `pooler` is 'transaction'; without it consumers poll. */
  listenConnectionString?: string;
}

const DEFAULT_VT_SECONDS = 30;

/**
 * The queue client: PGMQ's API, typed. Every method takes `{ tx }` to run in
 * the caller's transaction (one of ours from `transaction()`, or a foreign
 * client such as a node-postgres `PoolClient` inside the caller's BEGIN).
 */
export class QueueClient {
  readonly driver: Driver;
  readonly schema: string;
  readonly logger: Logger;
  private readonly ownsDriver: boolean;
  private readonly s: string;
  private readonly statements: QueueStatements;
  /** lock_timeout of the operations that wait on another transaction's lock (lock-timeout.ts). */
  readonly lockTimeoutMs: number;

  constructor(options: QueueClientOptions = {}) {
    this.schema = checkSchemaName(options.schema ?? 'pgmq');
    this.s = quoteIdent(this.schema);
    this.logger = options.logger ?? silentLogger;
    this.lockTimeoutMs = checkLockTimeout(options.lockTimeoutMs);
    ({ driver: this.driver, owned: this.ownsDriver } = resolveDriver(options, this.logger));
    this.statements = new QueueStatements(this.schema, this.lockTimeoutMs);
  }

  /** Installs or upgrades the queue engine in this client's schema. */
  migrate(): Promise<MigrateResult> {
    return migrate({
      driver: this.driver,
      components: ['queue'],
      schemas: { queue: this.schema },
      logger: this.logger,
    });
  }

  /** Runs `fn` in a transaction; pass the `tx` it gets to any method as `{ tx }`. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.driver.transaction(fn);
  }

  /** A handle bound to one queue and payload type. */
  queue<T = unknown>(name: string): TypedQueue<T> {
    return new TypedQueue<T>(this, checkQueueName(name));
  }

  // --- queue management -------------------------------------------------

  async createQueue(queue: string, options: CreateQueueOptions = {}): Promise<void> {
    checkQueueName(queue, { forCreate: true });
    const fn = options.unlogged ? 'create_unlogged' : 'create';
    await this.sql(options, `SELECT ${this.s}.${quoteIdent(fn)}($1::text)`, [queue]);
  }

  /** Drops the queue and its archive; false when it did not exist. */
  async dropQueue(queue: string, options: TxOption = {}): Promise<boolean> {
    checkQueueName(queue);
    const res = await this.sql<{ dropped: boolean }>(
      options,
      `SELECT ${this.s}.drop_queue($1::text) AS dropped${lockGuardFrom(this.lockTimeoutMs, 2)}`,
      withLockParam(this.lockTimeoutMs, [queue]),
    ).catch((err: unknown) => {
      throw explainLock(err, `queue "${queue}" (drop)`);
    });
    this.statements.forget(queue);
    return res[0]!.dropped;
  }

  /** Deletes every message (not the archive); returns how many there were. */
  async purgeQueue(queue: string, options: TxOption = {}): Promise<number> {
    checkQueueName(queue);
    const res = await this.sql<{ n: string }>(
      options,
      `SELECT ${this.s}.purge_queue($1::text) AS n${lockGuardFrom(this.lockTimeoutMs, 2)}`,
      withLockParam(this.lockTimeoutMs, [queue]),
    ).catch((err: unknown) => {
      throw explainLock(err, `a message of queue "${queue}" (purge)`);
    });
    return Number(res[0]!.n);
  }

  async listQueues(options: TxOption = {}): Promise<QueueInfo[]> {
    const rows = await this.sql<QueueRow>(options, `SELECT * FROM ${this.s}.list_queues()`);
    return rows.map(toQueueInfo);
  }

  /** Asks the database whether `queue` is an acceptable name to create (throws when not). */
  async validateQueueName(queue: string, options: TxOption = {}): Promise<void> {
    checkQueueName(queue, { forCreate: true });
    await this.sql(
      options,
      `SELECT ${this.s}.validate_queue_name($1::text), ${this.s}.format_table_name($1::text, 'q')`,
      [queue],
    );
  }

  // --- sending -----------------------------------------------------------

  async send<T>(queue: string, message: T, options: SendOptions = {}): Promise<number> {
    checkQueueName(queue);
    const body = toJson('message', message);
    return traceSend(
      queue,
      options.headers,
      (h) =>
        this.statements.send(
          this.exec(options),
          queue,
          body,
          h == null ? null : toJson('headers', h),
          vtOf(options),
        ),
      (id) => id,
    );
  }

  async sendBatch<T>(
    queue: string,
    messages: readonly T[],
    options: SendBatchOptions = {},
  ): Promise<number[]> {
    checkQueueName(queue);
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new InvalidArgumentError('msgs cannot be NULL or empty');
    }
    const bodies = messages.map((m, i) => toJson(`messages[${i}]`, m));
    let headers: (string | null)[] | null = null;
    if (options.headers) {
      if (options.headers.length !== messages.length) {
        throw new InvalidArgumentError(
          `headers array length (${options.headers.length}) must match msgs array length (${messages.length})`,
        );
      }
      headers = options.headers.map((h, i) => (h == null ? null : toJson(`headers[${i}]`, h)));
    }
    return this.statements.sendBatch(this.exec(options), queue, bodies, headers, vtOf(options));
  }

  // --- reading -----------------------------------------------------------

  async read<T = unknown>(queue: string, options: ReadOptions = {}): Promise<Message<T>[]> {
    checkQueueName(queue);
    const qty = checkInt('qty', options.qty ?? 1, { min: 0 });
    const [vtExpr, vt] = this.readVt(options);
    const rows = await traceReceive(queue, () =>
      this.sql<MessageRow>(
        options,
        `SELECT ${MESSAGE_COLUMNS} FROM ${this.s}.read($1::text, ${vtExpr}, $3::integer, $4::jsonb)`,
        [queue, vt, qty, conditionalJson(options.conditional)],
        true,
      ),
    );
    return rows.map((r) => toMessage<T>(r)).sort(byMsgId);
  }

  /** Like read, but the database waits up to `maxPollSeconds` for messages. */
  async readWithPoll<T = unknown>(
    queue: string,
    options: ReadWithPollOptions = {},
  ): Promise<Message<T>[]> {
    checkQueueName(queue);
    const qty = checkInt('qty', options.qty ?? 1, { min: 0 });
    const maxPoll = checkInt('maxPollSeconds', options.maxPollSeconds ?? 5, { min: 0 });
    const interval = checkInt('pollIntervalMs', options.pollIntervalMs ?? 100, { min: 1 });
    const [vtExpr, vt] = this.readVt(options);
    const rows = await this.sql<MessageRow>(
      options,
      `SELECT ${MESSAGE_COLUMNS} FROM ${this.s}.read_with_poll($1::text, ${vtExpr}, $3::integer, $4::integer, $5::integer, $6::jsonb)`,
      [queue, vt, qty, maxPoll, interval, conditionalJson(options.conditional)],
      false,
      maxPoll * 1000,
    );
    return rows.map((r) => toMessage<T>(r)).sort(byMsgId);
  }

  /** Reads and deletes in one step (at-most-once). */
  async pop<T = unknown>(queue: string, options: PopOptions = {}): Promise<Message<T>[]> {
    checkQueueName(queue);
    const qty = checkInt('qty', options.qty ?? 1, { min: 0 });
    const rows = await this.sql<MessageRow>(
      options,
      `SELECT ${MESSAGE_COLUMNS} FROM ${this.s}.pop($1::text, $2::integer)`,
      [queue, qty],
      true,
    );
    return rows.map((r) => toMessage<T>(r)).sort(byMsgId);
  }

  // --- finishing -----------------------------------------------------------

  /** Moves messages to the archive; returns whether it (or which of them) existed. */
  archive(queue: string, msgId: number, options?: TxOption): Promise<boolean>;
  archive(queue: string, msgIds: readonly number[], options?: TxOption): Promise<number[]>;
  async archive(
    queue: string,
    ids: number | readonly number[],
    options: TxOption = {},
  ): Promise<boolean | number[]> {
    checkQueueName(queue);
    const list = Array.isArray(ids) ? checkMsgIds(ids) : [checkMsgId(ids)];
    const done = await this.statements
      .archive(this.exec(options), queue, list)
      .catch(lockedMessage(queue, list));
    return Array.isArray(ids) ? done : done.length > 0;
  }

  /** Deletes messages for good; returns whether it (or which of them) existed. */
  delete(queue: string, msgId: number, options?: TxOption): Promise<boolean>;
  delete(queue: string, msgIds: readonly number[], options?: TxOption): Promise<number[]>;
  async delete(
    queue: string,
    ids: number | readonly number[],
    options: TxOption = {},
  ): Promise<boolean | number[]> {
    checkQueueName(queue);
    const list = Array.isArray(ids) ? checkMsgIds(ids) : [checkMsgId(ids)];
    const done = await this.statements
      .delete(this.exec(options), queue, list)
      .catch(lockedMessage(queue, list));
    return Array.isArray(ids) ? done : done.length > 0;
  }

  /**
   * Sets when messages become visible: `seconds` from now, or at a `Date`.
   * Returns the updated messages (ids that do not exist are absent).
   */
  async setVisibilityTimeout<T = unknown>(
    queue: string,
    ids: number | readonly number[],
    vt: number | Date,
    options: TxOption = {},
  ): Promise<Message<T>[]> {
    checkQueueName(queue);
    const list = Array.isArray(ids) ? checkMsgIds(ids) : [checkMsgId(ids)];
    const [expr, value] =
      vt instanceof Date
        ? ['$3::timestamptz', checkDate('vt', vt)]
        : ['$3::integer', checkInt('vt', vt)];
    // The guard row comes first, then set_vt runs once per guard row (both fenced by OFFSET 0).
    const call = `${this.s}.set_vt($1::text, $2::bigint[], ${expr})`;
    const text =
      this.lockTimeoutMs > 0
        ? `SELECT ${MESSAGE_COLUMNS.split(', ')
            .map((c) => `(x.m).${c}`)
            .join(
              ', ',
            )} FROM (SELECT ${call} AS m${lockGuardFrom(this.lockTimeoutMs, 4)} OFFSET 0) AS x`
        : `SELECT ${MESSAGE_COLUMNS} FROM ${call}`;
    const rows = await this.sql<MessageRow>(
      options,
      text,
      withLockParam(this.lockTimeoutMs, [queue, list, value]),
      true,
    ).catch(lockedMessage(queue, list));
    return rows.map((r) => toMessage<T>(r)).sort(byMsgId);
  }

  // --- metrics -------------------------------------------------------------

  /**
   * Queue figures without scanning a large queue: exact when fast metrics are
   * enabled or the table is small, else estimated (`exact: false`); see
   * docs/queue.md. `{ exact: true }` runs PGMQ's `metrics()` (a full count).
   */
  async metrics(queue: string, options: MetricsOptions = {}): Promise<QueueMetrics> {
    checkQueueName(queue);
    const fn = options.exact ? 'metrics($1::text)' : 'metrics_fast($1::text)';
    const rows = await this.sql<MetricsRow>(options, `SELECT * FROM ${this.s}.${fn}`, [queue]);
    return toMetrics(rows[0]!);
  }

  /** `metrics()` of every queue (skipping a queue whose metrics fail, as `metrics_all()`). */
  async metricsAll(options: MetricsOptions = {}): Promise<QueueMetrics[]> {
    const fn = options.exact ? 'metrics_all()' : 'metrics_fast_all()';
    const rows = await this.sql<MetricsRow>(options, `SELECT * FROM ${this.s}.${fn}`);
    return rows.map(toMetrics);
  }

  // --- FIFO groups, topics, notifications, held reads (issue 4 part A) ------
  // Implementations live in grouped.ts, topics.ts, notify.ts and held.ts.

  /** `read_grouped`: fills the batch from the oldest FIFO group first (SQS-FIFO style). */
  readGrouped<T = unknown>(queue: string, options: GroupedReadOptions = {}): Promise<Message<T>[]> {
    return this.readGroupedBy<T>(queue, 'grouped', options);
  }
  /** `read_grouped_rr`: one message of every group, then the second of every group… (in that order). */
  readGroupedRoundRobin<T = unknown>(
    queue: string,
    options: GroupedReadOptions = {},
  ): Promise<Message<T>[]> {
    return this.readGroupedBy<T>(queue, 'roundRobin', options);
  }
  /** `read_grouped_head`: at most one message (the head) per group. */
  readGroupedHead<T = unknown>(
    queue: string,
    options: GroupedReadOptions = {},
  ): Promise<Message<T>[]> {
    return this.readGroupedBy<T>(queue, 'head', options);
  }
  readGroupedWithPoll<T = unknown>(
    queue: string,
    options: GroupedReadWithPollOptions = {},
  ): Promise<Message<T>[]> {
    return this.readGroupedBy<T>(queue, 'grouped', options, true);
  }
  readGroupedRoundRobinWithPoll<T = unknown>(
    queue: string,
    options: GroupedReadWithPollOptions = {},
  ): Promise<Message<T>[]> {
    return this.readGroupedBy<T>(queue, 'roundRobin', options, true);
  }
  readGroupedHeadWithPoll<T = unknown>(
    queue: string,
    options: GroupedReadWithPollOptions = {},
  ): Promise<Message<T>[]> {
    return this.readGroupedBy<T>(queue, 'head', options, true);
  }
  /** Any group read by mode (what the FIFO consumer calls). */
  readGroupedBy<T = unknown>(
    queue: string,
    mode: GroupedReadMode,
    options: GroupedReadWithPollOptions = {},
    poll = false,
  ): Promise<Message<T>[]> {
    checkQueueName(queue);
    return readGroupedRows<T>(this.exec(options), this.s, queue, mode, options, poll);
  }
  /** `create_fifo_index(queue)`: GIN index on headers. */
  async createFifoIndex(queue: string, options: TxOption = {}): Promise<void> {
    checkQueueName(queue);
    await createFifoIndexSql(this.exec(options), this.s, queue);
  }
  /** `create_fifo_indexes_all()`. */
  async createFifoIndexesAll(options: TxOption = {}): Promise<void> {
    await createFifoIndexSql(this.exec(options), this.s, undefined);
  }

  /** Routes messages sent with a matching routing key to `queue` (`*` one word, `#` any). */
  async bindTopic(pattern: string, queue: string, options: TxOption = {}): Promise<void> {
    await this.topics.bind(this.exec(options), pattern, queue);
  }
  async unbindTopic(pattern: string, queue: string, options: TxOption = {}): Promise<boolean> {
    return this.topics.unbind(this.exec(options), pattern, queue);
  }
  /** All bindings (newest first), or those of `options.queue`. */
  async listTopicBindings(options: TxOption & { queue?: string } = {}): Promise<TopicBinding[]> {
    return this.topics.list(this.exec(options), options.queue);
  }
  /** The bindings a routing key matches, by pattern. */
  async testRouting(routingKey: string, options: TxOption = {}): Promise<TopicRoute[]> {
    return this.topics.testRouting(this.exec(options), routingKey);
  }
  /** Throws InvalidArgumentError with PGMQ's message when the key is not valid. */
  async validateRoutingKey(routingKey: string, options: TxOption = {}): Promise<void> {
    await this.topics.validate(this.exec(options), 'routing_key', routingKey);
  }
  async validateTopicPattern(pattern: string, options: TxOption = {}): Promise<void> {
    await this.topics.validate(this.exec(options), 'topic_pattern', pattern);
  }
  /** Sends to every queue bound to a matching pattern; returns how many queues got it. */
  async sendTopic<T>(
    routingKey: string,
    message: T,
    options: SendTopicOptions = {},
  ): Promise<number> {
    return this.topics.send(this.exec(options), routingKey, message, options);
  }
  async sendBatchTopic<T>(
    routingKey: string,
    messages: readonly T[],
    options: SendBatchTopicOptions = {},
  ): Promise<TopicSendResult[]> {
    return this.topics.sendBatch(this.exec(options), routingKey, messages, options);
  }

  /** Makes inserts into `queue` NOTIFY (throttled; default 250 ms between notifications). */
  async enableNotifyInsert(
    queue: string,
    options: TxOption & { throttleIntervalMs?: number } = {},
  ): Promise<void> {
    checkQueueName(queue);
    await this.notify.enable(this.exec(options), queue, 'insert', options.throttleIntervalMs);
  }
  async disableNotifyInsert(queue: string, options: TxOption = {}): Promise<void> {
    checkQueueName(queue);
    await this.notify.disable(this.exec(options), queue, 'insert');
  }
  async updateNotifyInsert(
    queue: string,
    throttleIntervalMs: number,
    options: TxOption = {},
  ): Promise<void> {
    checkQueueName(queue);
    await this.notify.update(this.exec(options), queue, 'insert', throttleIntervalMs);
  }
  async listNotifyInsertThrottles(options: TxOption = {}): Promise<NotifyThrottle[]> {
    return this.notify.list(this.exec(options), 'insert');
  }
  /** Makes deletes from `queue` NOTIFY (PGMQ 1.11.3); wakes FIFO consumers when a group head is finished. */
  async enableNotifyDelete(
    queue: string,
    options: TxOption & { throttleIntervalMs?: number } = {},
  ): Promise<void> {
    checkQueueName(queue);
    await this.notify.enable(this.exec(options), queue, 'delete', options.throttleIntervalMs);
  }
  async disableNotifyDelete(queue: string, options: TxOption = {}): Promise<void> {
    checkQueueName(queue);
    await this.notify.disable(this.exec(options), queue, 'delete');
  }
  async updateNotifyDelete(
    queue: string,
    throttleIntervalMs: number,
    options: TxOption = {},
  ): Promise<void> {
    checkQueueName(queue);
    await this.notify.update(this.exec(options), queue, 'delete', throttleIntervalMs);
  }
  async listNotifyDeleteThrottles(options: TxOption = {}): Promise<NotifyThrottle[]> {
    return this.notify.list(this.exec(options), 'delete');
  }
  /** LISTENs for the queue's insert (or delete) notifications on the driver's dedicated connection. */
  listen(queue: string, handler: () => void, event: NotifyEvent = 'insert'): Promise<Subscription> {
    checkQueueName(queue);
    return this.notify.listen(this.driver, queue, event, handler);
  }
  /** `listen(queue, handler, 'insert')`. Notifications arrive only after `enableNotifyInsert`. */
  onInsert(queue: string, handler: () => void): Promise<Subscription> {
    return this.listen(queue, handler, 'insert');
  }

  /**
   * Deletes the message only if the read with this `readCount` still holds it
   * (nobody has read it since). False, and nothing changes, otherwise.
   */
  async deleteIfHeld(
    queue: string,
    msgId: number,
    readCount: number,
    options: TxOption = {},
  ): Promise<boolean> {
    checkQueueName(queue);
    return this.held
      .delete(this.exec(options), queue, checkMsgId(msgId), checkInt('readCount', readCount))
      .catch(lockedMessage(queue, [msgId]));
  }
  /** Archives the message only if the read with this `readCount` still holds it. */
  async archiveIfHeld(
    queue: string,
    msgId: number,
    readCount: number,
    options: TxOption = {},
  ): Promise<boolean> {
    checkQueueName(queue);
    return this.held
      .archive(this.exec(options), queue, checkMsgId(msgId), checkInt('readCount', readCount))
      .catch(lockedMessage(queue, [msgId]));
  }
  /** Sets vt (seconds from now, or a Date) only if the read still holds it; null otherwise. */
  async setVisibilityTimeoutIfHeld<T = unknown>(
    queue: string,
    msgId: number,
    readCount: number,
    vt: number | Date,
    options: TxOption = {},
  ): Promise<Message<T> | null> {
    checkQueueName(queue);
    const value = vt instanceof Date ? checkDate('vt', vt) : checkInt('vt', vt);
    return this.held
      .setVt<T>(
        this.exec(options),
        queue,
        checkMsgId(msgId),
        checkInt('readCount', readCount),
        value,
      )
      .catch(lockedMessage(queue, [msgId]));
  }
  /** Milliseconds (database clock) until the queue's earliest future vt; null when none. */
  async msUntilNextVisible(queue: string, options: TxOption = {}): Promise<number | null> {
    checkQueueName(queue);
    return this.held.msUntilNextVisible(this.exec(options), queue);
  }

  private topicSql?: TopicSql;
  private notifySql?: NotifySql;
  private heldSql?: HeldStatements;
  private get topics(): TopicSql {
    return (this.topicSql ??= new TopicSql(this.s));
  }
  private get notify(): NotifySql {
    return (this.notifySql ??= new NotifySql(this.s, this.schema));
  }
  private get held(): HeldStatements {
    return (this.heldSql ??= new HeldStatements(this.schema, this.lockTimeoutMs));
  }

  // --- transaction-held batches ----------------------------------------------

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
    const qty = checkInt('qty', options.qty ?? 10, { min: 1 });
    const finish = options.finish ?? 'delete';
    if (finish !== 'delete' && finish !== 'archive') {
      throw new InvalidArgumentError(`finish must be 'delete' or 'archive', got ${String(finish)}`);
    }
    const conditional = conditionalJson(options.conditional);
    return this.driver.transaction(async (tx) => {
      const rows = await this.statements.readLocked(tx, queue, qty, conditional);
      if (rows.length === 0) return 0;
      const messages = rows.map((r) => toMessage<T>(r)).sort(byMsgId);
      await handler(messages, tx);
      const ids = messages.map((m) => m.msgId);
      if (finish === 'delete') await this.statements.delete(tx, queue, ids);
      else await this.statements.archive(tx, queue, ids);
      return ids.length;
    });
  }

  // --- consuming -----------------------------------------------------------

  /**
   * An async iterator over the queue's messages. It reads in batches, waits
   * (long-polls) when the queue is empty, stops when `signal` aborts or the
   * loop is left, and hands back messages it fetched but did not yield.
   */
  consume<T = unknown>(queue: string, options: ConsumeOptions = {}): Consumer<T> {
    checkQueueName(queue);
    return new Consumer<T>(this, queue, options);
  }

  /** Closes the pool if this client made it. */
  async close(): Promise<void> {
    if (this.ownsDriver) await this.driver.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // --- partitions, dead letters, retention, fast metrics, maintenance (issue 4 part B) ---

  /** PGMQ's `create_partitioned`: a queue on native range partitions (no pg_partman). Idempotent. */
  async createPartitionedQueue(
    queue: string,
    options: parts.CreatePartitionedQueueOptions = {},
  ): Promise<void> {
    checkQueueName(queue, { forCreate: true });
    await parts.createPartitioned(this.exec(options), this.s, queue, options);
  }

  /** PGMQ's `convert_archive_partitioned`: the queue's archive becomes partitioned (its rows are moved over). */
  async convertArchivePartitioned(
    queue: string,
    options: parts.ConvertArchiveOptions = {},
  ): Promise<void> {
    checkQueueName(queue);
    await parts.convertArchivePartitioned(this.exec(options), this.s, queue, options);
  }

  /** One call of `run_maintenance(queue)`; see {@link MaintenanceScheduler} for the periodic form. */
  runMaintenance(
    queue: string,
    options: TxOption & { batchSize?: number } = {},
  ): Promise<parts.MaintenanceResult> {
    checkQueueName(queue);
    return parts.runMaintenance(this.exec(options), this.s, queue, options.batchSize ?? 10_000);
  }

  /** Queues with periodic work (partitions, archive retention or fast metrics). */
  listMaintainedQueues(options: TxOption = {}): Promise<string[]> {
    return parts.listMaintainedQueues(this.exec(options), this.s);
  }

  /** A scheduler running maintenance every `intervalMs` on this client's pool; call `start()`. */
  maintenance(options: MaintenanceSchedulerOptions = {}): MaintenanceScheduler {
    return new MaintenanceScheduler(this.driver, this.schema, { logger: this.logger, ...options });
  }

  /** Messages read `maxReadCount` times that become visible again move to `deadLetterQueue`. */
  async setDeadLetterPolicy(queue: string, options: dl.SetDeadLetterPolicyOptions): Promise<void> {
    checkQueueName(queue);
    await dl.setDeadLetterPolicy(this.exec(options), this.s, queue, options);
  }

  getDeadLetterPolicy(queue: string, options: TxOption = {}): Promise<dl.DeadLetterPolicy | null> {
    checkQueueName(queue);
    return dl.getDeadLetterPolicy(this.exec(options), this.s, queue);
  }

  /** Removes the policy; false when there was none. */
  clearDeadLetterPolicy(queue: string, options: TxOption = {}): Promise<boolean> {
    checkQueueName(queue);
    return dl.clearDeadLetterPolicy(this.exec(options), this.s, queue);
  }

  /** Dead letters in msg_id order, without reading them (nothing changes). */
  listDeadLetters<T = unknown>(
    deadLetterQueue: string,
    options: dl.ListDeadLettersOptions = {},
  ): Promise<dl.DeadLetter<T>[]> {
    checkQueueName(deadLetterQueue);
    return dl.listDeadLetters<T>(this.exec(options), this.s, deadLetterQueue, options);
  }

  /** Moves one dead letter back to its queue (read count 0, original headers); its new msg_id, or null. */
  requeueDeadLetter(
    deadLetterQueue: string,
    msgId: number,
    options: TxOption = {},
  ): Promise<number | null> {
    checkQueueName(deadLetterQueue);
    return dl.requeueDeadLetter(this.exec(options), this.s, deadLetterQueue, msgId);
  }

  /** Moves every dead letter (or those from `sourceQueue`) back; how many moved. */
  requeueDeadLetters(
    deadLetterQueue: string,
    options: dl.DeadLetterFilterOptions = {},
  ): Promise<number> {
    checkQueueName(deadLetterQueue);
    return dl.requeueDeadLetters(this.exec(options), this.s, deadLetterQueue, options);
  }

  /** Deletes every dead letter (or those from `sourceQueue`); how many. */
  purgeDeadLetters(
    deadLetterQueue: string,
    options: dl.DeadLetterFilterOptions = {},
  ): Promise<number> {
    checkQueueName(deadLetterQueue);
    return dl.purgeDeadLetters(this.exec(options), this.s, deadLetterQueue, options);
  }

  /** Archived messages older than `retentionSeconds` are deleted by maintenance; null clears. */
  async setArchiveRetention(
    queue: string,
    retentionSeconds: number | null,
    options: TxOption = {},
  ): Promise<void> {
    checkQueueName(queue);
    await setArchiveRetention(this.exec(options), this.s, queue, retentionSeconds);
  }

  /** The archive retention in seconds, or null. */
  getArchiveRetention(queue: string, options: TxOption = {}): Promise<number | null> {
    checkQueueName(queue);
    return getArchiveRetention(this.exec(options), this.s, queue);
  }

  /** Makes `metrics()` exact without scanning the table (counts kept by triggers). Idempotent. */
  async enableFastMetrics(queue: string, options: TxOption = {}): Promise<void> {
    checkQueueName(queue);
    await enableFastMetrics(this.exec(options), this.s, queue);
  }

  disableFastMetrics(queue: string, options: TxOption = {}): Promise<boolean> {
    checkQueueName(queue);
    return disableFastMetrics(this.exec(options), this.s, queue);
  }

  fastMetricsEnabled(queue: string, options: TxOption = {}): Promise<boolean> {
    checkQueueName(queue);
    return fastMetricsEnabled(this.exec(options), this.s, queue);
  }

  // --- internals -------------------------------------------------------------

  private exec(options: TxOption): Executor {
    return options.tx ?? this.driver;
  }

  private async sql<R>(
    options: TxOption,
    text: string,
    params: unknown[] = [],
    prepare = false,
    timeoutExtraMs = 0,
  ): Promise<R[]> {
    const res = await execute<R>(this.exec(options), text, params, { prepare, timeoutExtraMs });
    return res.rows;
  }

  private readVt(options: ReadOptions): [string, number | Date] {
    if (options.visibleUntil !== undefined) {
      if (options.visibilityTimeoutSeconds !== undefined) {
        throw new InvalidArgumentError('give visibilityTimeoutSeconds or visibleUntil, not both');
      }
      return ['$2::timestamptz', checkDate('visibleUntil', options.visibleUntil)];
    }
    return [
      '$2::integer',
      checkInt('visibilityTimeoutSeconds', options.visibilityTimeoutSeconds ?? DEFAULT_VT_SECONDS),
    ];
  }
}

function vtOf(options: { delaySeconds?: number; deliverAt?: Date }): VtSpec {
  if (options.deliverAt !== undefined) {
    if (options.delaySeconds !== undefined)
      throw new InvalidArgumentError('give delaySeconds or deliverAt, not both');
    return { kind: 'at', value: checkDate('deliverAt', options.deliverAt) };
  }
  return { kind: 'seconds', value: checkInt('delaySeconds', options.delaySeconds ?? 0) };
}

function conditionalJson(conditional: unknown): string {
  return conditional === undefined || conditional === null
    ? '{}'
    : toJson('conditional', conditional);
}

/** A catch handler that names the locked message(s) in a LockTimeoutError. */
function lockedMessage(queue: string, ids: readonly number[]): (err: unknown) => never {
  return (err) => {
    const which = ids.length === 1 ? `message ${ids[0]}` : `one of messages ${ids.join(', ')}`;
    throw explainLock(err, `${which} of queue "${queue}"`);
  };
}

const byMsgId = (a: Message<unknown>, b: Message<unknown>): number => a.msgId - b.msgId;

/** A queue client bound to one queue and payload type. */
export class TypedQueue<T> {
  constructor(
    readonly client: QueueClient,
    readonly name: string,
  ) {}
  create(options?: CreateQueueOptions): Promise<void> {
    return this.client.createQueue(this.name, options);
  }
  drop(options?: TxOption): Promise<boolean> {
    return this.client.dropQueue(this.name, options);
  }
  purge(options?: TxOption): Promise<number> {
    return this.client.purgeQueue(this.name, options);
  }
  send(message: T, options?: SendOptions): Promise<number> {
    return this.client.send<T>(this.name, message, options);
  }
  sendBatch(messages: readonly T[], options?: SendBatchOptions): Promise<number[]> {
    return this.client.sendBatch<T>(this.name, messages, options);
  }
  read(options?: ReadOptions): Promise<Message<T>[]> {
    return this.client.read<T>(this.name, options);
  }
  readWithPoll(options?: ReadWithPollOptions): Promise<Message<T>[]> {
    return this.client.readWithPoll<T>(this.name, options);
  }
  pop(options?: PopOptions): Promise<Message<T>[]> {
    return this.client.pop<T>(this.name, options);
  }
  archive(msgId: number, options?: TxOption): Promise<boolean>;
  archive(msgIds: readonly number[], options?: TxOption): Promise<number[]>;
  archive(ids: number | readonly number[], options?: TxOption): Promise<boolean | number[]> {
    return typeof ids === 'number'
      ? this.client.archive(this.name, ids, options)
      : this.client.archive(this.name, ids, options);
  }
  delete(msgId: number, options?: TxOption): Promise<boolean>;
  delete(msgIds: readonly number[], options?: TxOption): Promise<number[]>;
  delete(ids: number | readonly number[], options?: TxOption): Promise<boolean | number[]> {
    return typeof ids === 'number'
      ? this.client.delete(this.name, ids, options)
      : this.client.delete(this.name, ids, options);
  }
  setVisibilityTimeout(
    ids: number | readonly number[],
    vt: number | Date,
    options?: TxOption,
  ): Promise<Message<T>[]> {
    return this.client.setVisibilityTimeout<T>(this.name, ids, vt, options);
  }
  metrics(options?: MetricsOptions): Promise<QueueMetrics> {
    return this.client.metrics(this.name, options);
  }
  consume(options?: ConsumeOptions): Consumer<T> {
    return this.client.consume<T>(this.name, options);
  }
}
