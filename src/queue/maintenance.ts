import { quoteIdent } from '../driver/quote.js';
import type { Executor } from '../driver/types.js';
import { Recovery, isTransientError, retryPolicy, type Health } from '../health.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { listMaintainedQueues, runMaintenance, type MaintenanceResult } from './partitions.js';
import { checkInt, checkQueueName } from './validate.js';

export interface MaintenanceSchedulerOptions {
  /** Pause between the end of one pass and the start of the next. Default 60000. */
  intervalMs?: number;
  /** Archive rows deleted per statement (one short transaction each). Default 10000. */
  batchSize?: number;
  /** Calls of run_maintenance per queue and pass while archive retention has more to do. Default 100. */
  maxBatchesPerPass?: number;
  /** Only these queues. Default: every queue with partitions, archive retention or fast metrics. */
  queues?: readonly string[];
  /** Called with the results of every pass. */
  onPass?: (results: MaintenanceResult[]) => void;
  logger?: Logger;
}

/**
 * Runs the queue engine's maintenance entry point, `run_maintenance(queue)`,
 * periodically: partitions made ahead and dropped per retention, rows moved
 * out of default partitions, archive retention in batches, fast-metrics
 * compaction.
 *
 * Several processes may run a scheduler against the same database: each
 * queue's maintenance takes a transaction-scoped advisory lock in SQL, so
 * only one process works on a queue at a time and the others skip it
 * (`skipped: true`). Transaction-scoped, not a session lock held by a
 * leader, because it survives poolers in transaction mode and needs no
 * dedicated connection. Each call is its own short transaction.
 *
 * The timer is unref'd (it does not keep the process alive); `stop()`
 * waits for the pass in progress.
 */
export class MaintenanceScheduler {
  private readonly s: string;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly maxBatches: number;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<MaintenanceResult[]> | undefined;
  private started = false;
  private readonly recovery: Recovery;
  /** The transient failure of the current pass, if any (the pass is then retried with back-off). */
  private passFailure: unknown;

  constructor(
    private readonly exec: Executor,
    schema: string,
    private readonly options: MaintenanceSchedulerOptions = {},
  ) {
    this.s = quoteIdent(schema);
    this.intervalMs = checkInt('intervalMs', options.intervalMs ?? 60_000, { min: 1 });
    this.batchSize = checkInt('batchSize', options.batchSize ?? 10_000, { min: 1 });
    this.maxBatches = checkInt('maxBatchesPerPass', options.maxBatchesPerPass ?? 100, { min: 1 });
    options.queues?.forEach((q) => checkQueueName(q));
    this.logger = options.logger ?? silentLogger;
    this.recovery = new Recovery({
      component: 'pgferry maintenance',
      logger: this.logger,
      policy: retryPolicy(this.intervalMs, Math.min(1000, this.intervalMs)),
    });
  }

  /**
   * running / reconnecting (the last pass could not reach the database; it is
   * retried with back-off, at most `intervalMs` apart) / stopped.
   */
  health(): Health {
    return this.recovery.health();
  }

  get isRunning(): boolean {
    return this.started;
  }

  /** Runs a pass now and then every `intervalMs`. Idempotent. */
  start(): this {
    if (this.started) return this;
    this.started = true;
    this.recovery.start();
    this.schedule(0);
    return this;
  }

  /** Stops the timer and waits for a pass in progress to finish. */
  async stop(): Promise<void> {
    this.started = false;
    this.recovery.stop();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /**
   * One pass over the queues. Errors of one queue are logged and do not
   * stop the others; a failure to list the queues rejects.
   */
  async runOnce(): Promise<MaintenanceResult[]> {
    if (this.running) return this.running;
    this.running = this.pass();
    try {
      return await this.running;
    } finally {
      this.running = undefined;
    }
  }

  private async pass(): Promise<MaintenanceResult[]> {
    this.passFailure = undefined;
    const queues = this.options.queues ?? (await listMaintainedQueues(this.exec, this.s));
    const results: MaintenanceResult[] = [];
    for (const queue of queues) {
      try {
        for (let i = 0; i < this.maxBatches; i++) {
          const r = await runMaintenance(this.exec, this.s, queue, this.batchSize);
          results.push(r);
          if (r.partitionsCreated || r.partitionsDropped || r.archiveRowsDeleted) {
            this.logger.info({ ...r }, 'queue maintenance');
          }
          if (r.skipped || !r.morePending) break;
        }
      } catch (err) {
        if (isTransientError(err)) this.passFailure ??= err;
        else this.logger.error({ err, queue }, 'queue maintenance failed');
      }
    }
    this.options.onPass?.(results);
    return results;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      let next = this.intervalMs;
      this.runOnce()
        .then(
          () => {
            if (this.passFailure === undefined) this.recovery.ok();
            else next = Math.min(next, this.recovery.failed(this.passFailure));
          },
          (err: unknown) => {
            if (isTransientError(err)) next = Math.min(next, this.recovery.failed(err));
            else this.logger.error({ err }, 'queue maintenance pass failed');
          },
        )
        .finally(() => {
          if (this.started) this.schedule(next);
        });
    }, delayMs);
    this.timer.unref();
  }
}
