import { execute } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import type { TaskClient } from './client.js';
import type { AnyTask } from './types.js';

export interface PruneOptions {
  /** How often one (elected) worker prunes. Default 43,200,000 (12 h), as postgres-task-queue. */
  intervalMs?: number;
  /** Archived jobs deleted per statement. Default 1000. */
  batchSize?: number;
  /** Archived jobs older than this are deleted. Default 604,800,000 (7 days). */
  retentionMs?: number;
  /**
   * Stored results (and dead/cancelled outcomes, finished flows) older than
   * this are deleted, in the same round. Default 604,800,000 (7 days).
   */
  resultRetentionMs?: number;
}

/** Delay of a worker's first pruning round after it starts. */
export const FIRST_ROUND_DELAY_MS = 5_000;

/**
 * Prunes the archives of the worker's tasks. Many workers may run one;
 * claim_chore lets exactly one of them do each round.
 */
export class Pruner {
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly retentionMs: number;
  private readonly resultRetentionMs: number;

  constructor(
    private readonly client: TaskClient,
    private readonly tasks: readonly AnyTask[],
    options: PruneOptions,
    /** Reports a failure; returns the back-off delay before a retry. */
    private readonly onError: (err: unknown) => number,
  ) {
    const pos = (what: string, v: number | undefined, d: number): number => {
      if (v === undefined) return d;
      if (!Number.isInteger(v) || v < 1)
        throw new InvalidArgumentError(`prune.${what} must be a positive integer`);
      return v;
    };
    this.intervalMs = pos('intervalMs', options.intervalMs, 12 * 3600_000);
    this.batchSize = pos('batchSize', options.batchSize, 1000);
    this.retentionMs = options.retentionMs ?? 7 * 24 * 3600_000;
    if (!(this.retentionMs >= 0)) throw new InvalidArgumentError('prune.retentionMs must be ≥ 0');
    this.resultRetentionMs = options.resultRetentionMs ?? 7 * 24 * 3600_000;
    if (!(this.resultRetentionMs >= 0))
      throw new InvalidArgumentError('prune.resultRetentionMs must be ≥ 0');
  }

  start(): void {
    const round = (): void => {
      if (this.running || this.stopped) return;
      clearTimeout(this.retryTimer);
      this.running = this.once()
        .then(
          () => undefined,
          (err: unknown) => {
            // A failed round is retried with back-off (within the interval), not skipped.
            const ms = this.onError(err);
            if (ms < this.intervalMs && !this.stopped) {
              this.retryTimer = setTimeout(round, ms);
              this.retryTimer.unref();
            }
          },
        )
        .finally(() => (this.running = undefined));
    };
    // The first round waits a little: a worker that starts into a backlog
    // spends its first moments on leases, not on a chore due every 12 h.
    this.retryTimer = setTimeout(round, Math.min(FIRST_ROUND_DELAY_MS, this.intervalMs));
    this.retryTimer.unref();
    this.timer = setInterval(round, this.intervalMs);
    this.timer.unref();
  }

  /** One round: returns how many archived jobs were deleted, or null when another worker has this round. */
  async once(): Promise<number | null> {
    const claim = await execute<{ ok: boolean }>(
      this.client.driver,
      `SELECT ${this.client.statements.t}.claim_chore($1, make_interval(secs => $2::float8 / 1000)) AS ok`,
      [
        `prune:${this.tasks
          .map((t) => t.name)
          .sort()
          .join(',')}`,
        this.intervalMs,
      ],
    );
    if (!claim.rows[0]!.ok) return null;
    let n = 0;
    for (const t of this.tasks) {
      n += await this.client.prune(t, { retentionMs: this.retentionMs, batchSize: this.batchSize });
      await this.client.pruneResults(t, {
        retentionMs: this.resultRetentionMs,
        batchSize: this.batchSize,
      });
    }
    return n;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    await this.running;
  }
}
