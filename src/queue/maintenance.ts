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
 * Lifecycle (docs/concepts.md): `start()` runs the first pass and resolves
 * once the scheduler is running (it rejects, leaving nothing behind, when
 * that pass cannot list the queues); `stop()` drains (waits for the pass in
 * progress); `run()` is start() and then waiting until stopped. The timer is
 * unref'd: it does not keep the process alive (`run()` does).
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
  /** The first pass of `start()`: a second call while it runs waits for it too. */
  private starting: Promise<this> | undefined;
  /** Resolves the promise `run()` waits on; set while started. */
  private stopped: (() => void) | undefined;
  private whenStopped: Promise<void> | undefined;
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

  /**
   * Runs a first pass and resolves once running, the next passes every
   * `intervalMs`. Rejects (and stops) when the first pass cannot list the
   * queues; one queue's failure is logged and does not stop it. Idempotent.
   */
  start(): Promise<this> {
    if (!this.started) this.starting = this.firstPass();
    return this.starting ?? Promise.resolve(this);
  }

  private async firstPass(): Promise<this> {
    this.begin();
    try {
      await this.runOnce();
    } catch (err) {
      await this.stop();
      throw err;
    }
    if (this.started && this.timer === undefined) {
      const failure = this.passFailure;
      this.schedule(
        failure === undefined
          ? (this.recovery.ok(), this.intervalMs)
          : Math.min(this.intervalMs, this.recovery.failed(failure)),
      );
    }
    return this;
  }

  /**
   * @deprecated The shipped `start()`: returns at once, the first pass runs in
   * the background. Use `await start()` (or `run()`); goes in the next release.
   */
  startInBackground(): this {
    if (this.started) return this;
    this.begin();
    this.schedule(0);
    return this;
  }

  /** start(), then resolves once stopped: by `stop()` or by `signal`. */
  async run(options: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = options.signal;
    if (signal?.aborted) return;
    const onAbort = (): void => void this.stop();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.start();
      await this.whenStopped;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Stops the timer and waits for a pass in progress to finish. Idempotent. */
  async stop(): Promise<void> {
    this.started = false;
    this.recovery.stop();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
    const stopped = this.stopped;
    this.stopped = undefined;
    stopped?.();
  }

  private begin(): void {
    this.started = true;
    this.whenStopped = new Promise((resolve) => (this.stopped = resolve));
    this.recovery.start();
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
