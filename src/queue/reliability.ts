import type { TxOption } from './types.js';
import { checkQueueName } from './validate.js';
import { QueueClientBase } from './base.js';
import {
  getArchiveRetention,
  setArchiveRetention,
  type ArchiveRetention,
} from './archive-retention.js';
import * as dl from './dead-letters.js';
import { enableFastMetrics, fastMetricsFlag } from './fast-metrics.js';
import { MaintenanceScheduler, type MaintenanceSchedulerOptions } from './maintenance.js';
import * as parts from './partitions.js';

/**
 * QueueClient's reliability section (issue 4 part B): partitions, dead
 * letters, archive retention, fast metrics, maintenance. Argument checks and
 * delegation to partitions.ts, dead-letters.ts, archive-retention.ts,
 * fast-metrics.ts and maintenance.ts.
 */
export abstract class QueueClientReliability extends QueueClientBase {
  /** PGMQ's `create_partitioned`: a queue on native range partitions (no pg_partman). Idempotent. */
  async createPartitionedQueue(
    queue: string,
    options: parts.CreatePartitionedQueueOptions = {},
  ): Promise<void> {
    checkQueueName(queue, { forCreate: true });
    await parts.createPartitioned(this.x(options), this.s, queue, options);
  }

  /** PGMQ's `convert_archive_partitioned`: the queue's archive becomes partitioned (its rows are moved over). */
  async convertArchivePartitioned(
    queue: string,
    options: parts.ConvertArchiveOptions = {},
  ): Promise<void> {
    checkQueueName(queue);
    await parts.convertArchivePartitioned(this.x(options), this.s, queue, options);
  }

  /** One call of `run_maintenance(queue)`; see {@link MaintenanceScheduler} for the periodic form. */
  runMaintenance(
    queue: string,
    options: TxOption & { batchSize?: number } = {},
  ): Promise<parts.MaintenanceResult> {
    checkQueueName(queue);
    return parts.runMaintenance(this.x(options), this.s, queue, options.batchSize ?? 10_000);
  }

  /** Queues with periodic work (partitions, archive retention or fast metrics). */
  listMaintainedQueues(options: TxOption = {}): Promise<string[]> {
    return parts.listMaintainedQueues(this.x(options), this.s);
  }

  /** A scheduler running maintenance every `intervalMs` on this client's pool; call `start()`. */
  maintenance(options: MaintenanceSchedulerOptions = {}): MaintenanceScheduler {
    return new MaintenanceScheduler(this.driver, this.schema, { logger: this.logger, ...options });
  }

  /** Messages read `maxReadCount` times that become visible again move to `deadLetterQueue`. */
  async setDeadLetterPolicy(queue: string, options: dl.SetDeadLetterPolicyOptions): Promise<void> {
    checkQueueName(queue);
    await dl.setDeadLetterPolicy(this.x(options), this.s, queue, options);
  }

  getDeadLetterPolicy(queue: string, options: TxOption = {}): Promise<dl.DeadLetterPolicy | null> {
    checkQueueName(queue);
    return dl.getDeadLetterPolicy(this.x(options), this.s, queue);
  }

  /** Removes the policy; false when there was none. */
  clearDeadLetterPolicy(queue: string, options: TxOption = {}): Promise<boolean> {
    checkQueueName(queue);
    return dl.clearDeadLetterPolicy(this.x(options), this.s, queue);
  }

  /** Dead letters in msg_id order, without reading them (nothing changes). */
  listDeadLetters<T = unknown>(
    deadLetterQueue: string,
    options: dl.ListDeadLettersOptions = {},
  ): Promise<dl.DeadLetter<T>[]> {
    checkQueueName(deadLetterQueue);
    return dl.listDeadLetters<T>(this.x(options), this.s, deadLetterQueue, options);
  }

  /** Moves one dead letter back to its queue (read count 0, original headers); its new msg_id, or null. */
  requeueDeadLetter(
    deadLetterQueue: string,
    msgId: number,
    options: TxOption = {},
  ): Promise<number | null> {
    checkQueueName(deadLetterQueue);
    return dl.requeueDeadLetter(this.x(options), this.s, deadLetterQueue, msgId);
  }

  /** Moves every dead letter (or those from `sourceQueue`) back; how many moved. */
  requeueDeadLetters(
    deadLetterQueue: string,
    options: dl.DeadLetterFilterOptions = {},
  ): Promise<number> {
    checkQueueName(deadLetterQueue);
    return dl.requeueDeadLetters(this.x(options), this.s, deadLetterQueue, options);
  }

  /** Deletes every dead letter (or those from `sourceQueue`); how many. */
  purgeDeadLetters(
    deadLetterQueue: string,
    options: dl.DeadLetterFilterOptions = {},
  ): Promise<number> {
    checkQueueName(deadLetterQueue);
    return dl.purgeDeadLetters(this.x(options), this.s, deadLetterQueue, options);
  }

  /**
   * Archived messages older than `retentionMs` (whole seconds: rounded up)
   * are deleted by maintenance; `{ retentionMs: null }` clears.
   */
  async setArchiveRetention(
    queue: string,
    retention: ArchiveRetention,
    options?: TxOption,
  ): Promise<void>;
  /** @deprecated Give `{ retentionMs }` (the seconds form goes in the next release). */
  async setArchiveRetention(
    queue: string,
    retentionSeconds: number | null,
    options?: TxOption,
  ): Promise<void>;
  async setArchiveRetention(
    queue: string,
    retention: ArchiveRetention | number | null,
    options: TxOption = {},
  ): Promise<void> {
    checkQueueName(queue);
    await setArchiveRetention(this.x(options), this.s, queue, retention);
  }

  /** The archive retention in seconds (as stored, PGMQ-style), or null. */
  getArchiveRetention(queue: string, options: TxOption = {}): Promise<number | null> {
    checkQueueName(queue);
    return getArchiveRetention(this.x(options), this.s, queue);
  }

  /** Makes `metrics()` exact without scanning the table (counts kept by triggers). Idempotent. */
  async enableFastMetrics(queue: string, options: TxOption = {}): Promise<void> {
    checkQueueName(queue);
    await enableFastMetrics(this.x(options), this.s, queue);
  }

  disableFastMetrics(queue: string, options: TxOption = {}): Promise<boolean> {
    checkQueueName(queue);
    return fastMetricsFlag(this.x(options), this.s, 'disable_fast_metrics', queue);
  }

  fastMetricsEnabled(queue: string, options: TxOption = {}): Promise<boolean> {
    checkQueueName(queue);
    return fastMetricsFlag(this.x(options), this.s, 'fast_metrics_enabled', queue);
  }
}
