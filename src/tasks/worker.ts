import { isListenRefused } from '../driver/pooler.js';
import { traceWorkerOutcomes } from '../telemetry/tracing.js';
import type { Subscription } from '../driver/types.js';
import { Recovery, retryPolicy, type Health } from '../health.js';
import { silentLogger } from '../logger.js';
import { TaskClient } from './client.js';
import { JobCancelledError, TaskConfigError } from './errors.js';
import type { WorkerEvents } from './events.js';
import { Pruner } from './pruner.js';
import { Scheduler } from './scheduler.js';
import { newLane, type Core } from './worker/core.js';
import { WorkerEmitter } from './worker/emitter.js';
import { dispatch } from './worker/execution.js';
import { fillLanes, onWake } from './worker/fetching.js';
import { workerSettings, type DrainSummary, type WorkerOptions } from './worker/options.js';
import { checkDrained, stopLanes } from './worker/shutdown.js';
import { workerStats, type WorkerStats } from './worker/stats.js';
import { onPause } from './worker/pause.js';

export type { DrainSummary, WorkerOptions } from './worker/options.js';
export type { WorkerStats } from './worker/stats.js';

/**
 * Runs tasks. It leases jobs in batches into a local buffer, runs up to
 * `concurrency` handlers, finishes jobs in batches (one statement for all
 * jobs completed while the previous one ran), sleeps on idle queues until a
 * notification, a due delayed job or its poll interval, and shuts down
 * gracefully. See docs/tasks.md; its parts are in src/tasks/worker/.
 */
export class Worker extends WorkerEmitter {
  readonly client: TaskClient;
  private readonly ownsClient: boolean;
  private readonly core: Core;
  private readonly scheduler: Scheduler;
  private readonly pruner: Pruner | undefined;
  private subs: Subscription[] = [];
  /** Set once start() has ensured the queues and listens: pump() waits for it. */
  private ready = false;
  /** The lane dispatch looks at first (round robin). */
  private readonly rr = { next: 0 };
  private stopPromise: Promise<void> | undefined;
  private resolveRun: (() => void) | undefined;
  private readonly onSignal = (): void => void this.stop();

  constructor(options: WorkerOptions) {
    super();
    const o = workerSettings(options);
    const logger = options.logger ?? silentLogger;
    const recovery = new Recovery({
      component: 'pgferry worker',
      logger,
      policy: retryPolicy(o.errorRetryIntervalMs),
    });
    this.ownsClient = !options.client;
    this.client = options.client ?? new TaskClient({ ...options, logger });
    const lanes = options.tasks.map((t) => newLane(t, o.batch.min));
    this.core = {
      client: this.client,
      o,
      logger,
      recovery,
      lanes,
      byName: new Map(lanes.map((l) => [l.task.name, l])),
      running: new Map(),
      state: 'new',
      drain: undefined,
      fire: (event, ...args) => this.fire(event, ...args),
      fail: (err) => this.fail(err),
      failed: (err) => this.failed(err),
      pump: () => this.pump(),
    };
    this.scheduler = new Scheduler(this.client, o.cron ? options.tasks : [], (err) =>
      this.failed(err),
    );
    this.pruner =
      options.prune === null
        ? undefined
        : new Pruner(this.client, options.tasks, options.prune ?? {}, (err) => this.failed(err));
    for (const [event, fn] of Object.entries(options.hooks ?? {})) {
      if (typeof fn === 'function') this.on(event, fn as (...args: unknown[]) => void);
    }
    traceWorkerOutcomes(this);
  }

  /** Emits without letting a throwing listener break the worker. */
  private fire<E extends keyof WorkerEvents>(event: E, ...args: WorkerEvents[E]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      if (event !== 'worker:error') this.fail(err);
      else this.core.logger.error({ err }, 'pgferry worker: a worker:error listener threw');
    }
  }

  private fail(err: unknown): void {
    this.core.logger.error({ err }, 'pgferry worker error');
    this.fire('worker:error', err);
  }

  /**
   * A database call of the loop failed (fetch, cron, prune): emitted as
   * `worker:error`, logged once per outage (not per attempt); returns the
   * back-off delay before the next attempt.
   */
  private failed(err: unknown): number {
    const delay = this.core.recovery.failed(err);
    this.fire('worker:error', err);
    return delay;
  }

  /**
   * running / reconnecting (a fetch, cron or prune call failed and is being
   * retried) / stopped, with the last error and last successful fetch.
   */
  health(): Health {
    return this.core.recovery.health();
  }

  /** What the worker is doing now: handlers running, and per task its fetch size, buffer and pending completions. */
  stats(): WorkerStats {
    return workerStats(this.core);
  }

  /** Starts the worker and resolves when it has stopped (stop(), SIGINT or SIGTERM). */
  async run(): Promise<void> {
    const stopped = new Promise<void>((resolve) => (this.resolveRun = resolve));
    await this.start();
    await stopped;
  }

  /** Starts the worker in the background; resolves once it is fetching. */
  async start(): Promise<void> {
    const core = this.core;
    if (core.state !== 'new') throw new TaskConfigError('a Worker can be started once');
    core.state = 'running';
    try {
      // The LISTEN connection opens while the task queues are ensured; a
      // wake-up that arrives meanwhile waits for `ready` (pump() does nothing before).
      const settled = await Promise.allSettled([
        this.client.ensure(core.lanes.map((l) => l.task)),
        core.o.listen ? this.listenAll() : undefined,
      ]);
      for (const r of settled) if (r.status === 'rejected') throw r.reason;
      if (!core.drain) {
        await this.scheduler.start();
        this.pruner?.start();
      }
    } catch (err) {
      core.state = 'stopped';
      await this.closeResources();
      this.resolveRun?.();
      throw err;
    }
    if (core.o.handleSignals && !core.drain) {
      process.once('SIGINT', this.onSignal);
      process.once('SIGTERM', this.onSignal);
    }
    // Ready (health `running`) once it has reached the database and listens.
    core.recovery.start();
    this.ready = true;
    this.fire('worker:ready');
    this.pump();
  }

  /** LISTENs for wake-ups, cancellations and pauses; subscriptions go to `subs` as they are made. */
  private async listenAll(): Promise<void> {
    const core = this.core;
    const t = this.client.tasksSchema;
    try {
      this.subs.push(await this.client.driver.listen(`${t}_wake`, (p) => onWake(core, p)));
      this.subs.push(await this.client.driver.listen(`${t}_cancel`, (p) => this.onCancel(p)));
      this.subs.push(await this.client.driver.listen(`${t}_pause`, (p) => onPause(core, p)));
    } catch (err) {
      // Behind a transaction pooler without a direct URL the driver refuses
      // LISTEN (and warns once): the worker polls.
      if (!isListenRefused(err)) throw err;
    }
  }

  /**
   * Runs every job that is runnable now (including retries that become due
   * meanwhile) and resolves when none is left, then stops. Cron and pruning
   * do not run. This is what `pgferry/testing`'s drain uses.
   */
  async runUntilIdle(): Promise<DrainSummary> {
    const result = new Promise<DrainSummary>(
      (resolve) => (this.core.drain = { resolve, summary: { succeeded: 0, retried: 0, dead: 0 } }),
    );
    await this.start();
    const summary = await result;
    await this.stop();
    return summary;
  }

  /**
   * Stops fetching, hands buffered jobs back, lets running handlers finish
   * for up to `graceMs` (default shutdownGraceMs), then aborts the rest
   * (WorkerShutdownError) and hands their jobs back for another worker.
   */
  stop(graceMs: number = this.core.o.shutdownGraceMs): Promise<void> {
    if (!this.stopPromise) this.stopPromise = this.shutdown(graceMs);
    return this.stopPromise;
  }

  private async shutdown(graceMs: number): Promise<void> {
    const wasNew = this.core.state === 'new';
    this.core.state = 'stopping';
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    if (!wasNew) {
      await this.scheduler.stop();
      await this.pruner?.stop();
      await stopLanes(this.core, graceMs);
    }
    await this.closeResources();
    this.core.state = 'stopped';
    this.core.recovery.stop();
    this.fire('worker:stopped');
    this.resolveRun?.();
  }

  private async closeResources(): Promise<void> {
    for (const s of this.subs.splice(0)) await s.close().catch(() => undefined);
    if (this.ownsClient) await this.client.close();
  }

  /** A `<tasks>_cancel` notification (`task:id`): abort the handler, or drop the buffered job. */
  private onCancel(payload: string | undefined): void {
    if (!payload) return;
    const i = payload.lastIndexOf(':');
    const name = payload.slice(0, i);
    const id = Number(payload.slice(i + 1));
    const r = this.core.running.get(`${name}:${id}`);
    if (r) {
      r.abort.abort(new JobCancelledError(name, id));
      return;
    }
    const lane = this.core.byName.get(name);
    if (lane) lane.buffer = lane.buffer.filter((b) => b.m.msgId !== id);
  }

  private pump(): void {
    if (this.core.state !== 'running' || !this.ready) return;
    dispatch(this.core, this.rr);
    fillLanes(this.core);
    checkDrained(this.core);
  }
}
