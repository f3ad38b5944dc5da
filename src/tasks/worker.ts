import { EventEmitter } from 'node:events';
import { isListenRefused } from '../driver/pooler.js';
import { traceWorkerOutcomes } from '../telemetry/tracing.js';
import type { Subscription } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import { Recovery, retryPolicy, type Health } from '../health.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { toMessage, type Message } from '../queue/index.js';
import { retryDelayMs } from './backoff.js';
import { TaskClient, type TaskClientOptions } from './client.js';
import { JobCancelledError, TaskConfigError, WorkerShutdownError } from './errors.js';
import type { WorkerEvents, WorkerHooks } from './events.js';
import { Pruner, type PruneOptions } from './pruner.js';
import { jobInfo, runAttempt, serialiseError, type Outcome } from './run-job.js';
import { Scheduler } from './scheduler.js';
import type { AnyTask, JobInfo } from './types.js';

export interface WorkerOptions extends Omit<TaskClientOptions, 'logger'> {
  /** The tasks this worker runs. */
  tasks: readonly AnyTask[];
  /** Use this client (its pool and schemas) instead of making one. */
  client?: TaskClient;
  /** Handlers running at once in this worker. Default 10. */
  concurrency?: number;
  /** Jobs leased per fetch query. Default max(2 × concurrency, 20), at most 1000. */
  batchSize?: number;
  /** Longest sleep between looks at an idle queue (LISTEN wakes it sooner). Default 1000. */
  pollIntervalMs?: number;
  /**
   * Longest wait after a failed fetch before trying again: retries back off
   * from 100 ms, doubling (with jitter) up to this. Default 5000.
   */
  errorRetryIntervalMs?: number;
  /** Wake on notifications (LISTEN). Turn off behind poolers that cannot LISTEN; polling remains. Default true. */
  listen?: boolean;
  /** On stop, how long running handlers may finish before they are aborted and handed back. Default 10000. */
  shutdownGraceMs?: number;
  /**
   * A job's lease lasts its task's timeoutMs plus this margin, so no other
   * worker can take it while its handler is within its timeout. Also how
   * long an aborted handler gets to return. Default 5000.
   */
  leaseMarginMs?: number;
  /**
   * Commit completions without waiting for the WAL flush (synchronous_commit
   * off, for those transactions only). A database crash may then forget the
   * last completions, and those jobs run again, as at-least-once allows.
   * Leases, retries and dead-letter moves stay durable. Default true.
   */
  asyncCommit?: boolean;
  /** Stop gracefully on SIGINT/SIGTERM. Default true. */
  handleSignals?: boolean;
  /** Fire the tasks' cron schedules from this worker. Default true. */
  cron?: boolean;
  /** Pruning of archived jobs (one worker per interval does it); null turns it off. */
  prune?: PruneOptions | null;
  /** Listeners to attach before the worker starts. */
  hooks?: WorkerHooks;
  logger?: Logger;
}

/** What a drain (runUntilIdle) did. */
export interface DrainSummary {
  succeeded: number;
  retried: number;
  dead: number;
}

/** Fetch queries one lane may have in flight at once. */
const MAX_FETCHES = 2;

interface Leased {
  lane: Lane;
  m: Message<unknown>;
  leasedAt: number;
}

interface Lane {
  task: AnyTask;
  buffer: Leased[];
  /** Fetch queries in flight (at most MAX_FETCHES). */
  fetching: number;
  refreshing: boolean;
  sleeping: boolean;
  sleepTimer: NodeJS.Timeout | undefined;
  /**
   * A fetch failed: no fetch until `retryTimer` fires. A flag cleared by the
   * timer itself, never a deadline compared with the clock: a timer may fire
   * a millisecond before such a deadline, and the lane would never look again.
   */
  paused: boolean;
  retryTimer: NodeJS.Timeout | undefined;
  drained: boolean;
  /** A notification came while the lane was not sleeping: do not go to sleep on the current fetch. */
  notified: boolean;
  /** The last fetch returned less than a batch: do not run a second fetch beside the next one. */
  lastFetchShort: boolean;
  done: { ids: number[]; rcs: number[]; jobs: { job: JobInfo; startedAt: number }[] };
  flushing: Promise<void> | undefined;
}

interface Running {
  leased: Leased;
  job: JobInfo;
  controller: AbortController;
  handedBack: boolean;
  done: Promise<void>;
}

/**
 * Runs tasks. It leases jobs in batches into a local buffer, runs up to
 * `concurrency` handlers, finishes jobs in batches (one statement for all
 * jobs completed while the previous one ran), sleeps on idle queues until a
 * notification, a due delayed job or its poll interval, and shuts down
 * gracefully. See docs/tasks.md.
 */
export class Worker extends EventEmitter {
  readonly client: TaskClient;
  private readonly ownsClient: boolean;
  private readonly lanes: Lane[];
  private readonly byName = new Map<string, Lane>();
  private readonly running = new Map<string, Running>();
  private readonly o: Required<
    Pick<
      WorkerOptions,
      | 'concurrency'
      | 'batchSize'
      | 'pollIntervalMs'
      | 'errorRetryIntervalMs'
      | 'listen'
      | 'shutdownGraceMs'
      | 'leaseMarginMs'
      | 'handleSignals'
      | 'cron'
      | 'asyncCommit'
    >
  >;
  private readonly logger: Logger;
  private readonly scheduler: Scheduler;
  private readonly pruner: Pruner | undefined;
  private readonly recovery: Recovery;
  private subs: Subscription[] = [];
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private rr = 0;
  private stopPromise: Promise<void> | undefined;
  private resolveRun: (() => void) | undefined;
  private drain: { resolve: (s: DrainSummary) => void; summary: DrainSummary } | undefined;
  private readonly onSignal = (): void => void this.stop();

  constructor(options: WorkerOptions) {
    super();
    if (!options || !Array.isArray(options.tasks) || options.tasks.length === 0) {
      throw new TaskConfigError('Worker needs at least one task');
    }
    const names = new Set<string>();
    for (const t of options.tasks) {
      if (names.has(t.name)) throw new TaskConfigError(`task "${t.name}" is listed twice`);
      names.add(t.name);
    }
    const int = (
      what: string,
      v: number | undefined,
      dflt: number,
      min: number,
      max = 2_147_483_647,
    ): number => {
      if (v === undefined) return dflt;
      if (!Number.isInteger(v) || v < min || v > max)
        throw new InvalidArgumentError(
          `${what} must be an integer in [${min}, ${max}], got ${String(v)}`,
        );
      return v;
    };
    const concurrency = int('concurrency', options.concurrency, 10, 1, 10_000);
    this.o = {
      concurrency,
      batchSize: int(
        'batchSize',
        options.batchSize,
        Math.min(1000, Math.max(2 * concurrency, 20)),
        1,
        10_000,
      ),
      pollIntervalMs: int('pollIntervalMs', options.pollIntervalMs, 1000, 1),
      errorRetryIntervalMs: int('errorRetryIntervalMs', options.errorRetryIntervalMs, 5000, 1),
      listen: options.listen ?? true,
      shutdownGraceMs: int('shutdownGraceMs', options.shutdownGraceMs, 10_000, 0),
      leaseMarginMs: int('leaseMarginMs', options.leaseMarginMs, 5000, 1),
      handleSignals: options.handleSignals ?? true,
      cron: options.cron ?? true,
      asyncCommit: options.asyncCommit ?? true,
    };
    this.logger = options.logger ?? silentLogger;
    this.recovery = new Recovery({
      component: 'pgferry worker',
      logger: this.logger,
      policy: retryPolicy(this.o.errorRetryIntervalMs),
    });
    this.ownsClient = !options.client;
    this.client = options.client ?? new TaskClient({ ...options, logger: this.logger });
    this.lanes = options.tasks.map((task) => ({
      task,
      buffer: [],
      fetching: 0,
      refreshing: false,
      sleeping: false,
      sleepTimer: undefined,
      paused: false,
      retryTimer: undefined,
      drained: false,
      notified: false,
      lastFetchShort: true,
      done: { ids: [], rcs: [], jobs: [] },
      flushing: undefined,
    }));
    for (const l of this.lanes) this.byName.set(l.task.name, l);
    this.scheduler = new Scheduler(this.client, this.o.cron ? options.tasks : [], (err) =>
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

  override on<E extends keyof WorkerEvents>(
    event: E,
    listener: (...args: WorkerEvents[E]) => void,
  ): this;
  override on(event: string | symbol, listener: (...args: never[]) => void): this;
  override on(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  override once<E extends keyof WorkerEvents>(
    event: E,
    listener: (...args: WorkerEvents[E]) => void,
  ): this;
  override once(event: string | symbol, listener: (...args: never[]) => void): this;
  override once(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }

  /** Emits without letting a throwing listener break the worker. */
  private fire<E extends keyof WorkerEvents>(event: E, ...args: WorkerEvents[E]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      if (event !== 'worker:error') this.fail(err);
      else this.logger.error({ err }, 'pgferry worker: a worker:error listener threw');
    }
  }

  private fail(err: unknown): void {
    this.logger.error({ err }, 'pgferry worker error');
    this.fire('worker:error', err);
  }

  /**
   * A database call of the loop failed (fetch, cron, prune): emitted as
   * `worker:error`, logged once per outage (not per attempt); returns the
   * back-off delay before the next attempt.
   */
  private failed(err: unknown): number {
    const delay = this.recovery.failed(err);
    this.fire('worker:error', err);
    return delay;
  }

  /**
   * running / reconnecting (a fetch, cron or prune call failed and is being
   * retried) / stopped, with the last error and last successful fetch.
   */
  health(): Health {
    return this.recovery.health();
  }

  /** Starts the worker and resolves when it has stopped (stop(), SIGINT or SIGTERM). */
  async run(): Promise<void> {
    const stopped = new Promise<void>((resolve) => (this.resolveRun = resolve));
    await this.start();
    await stopped;
  }

  /** Starts the worker in the background; resolves once it is fetching. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new TaskConfigError('a Worker can be started once');
    this.state = 'running';
    try {
      await this.client.ensure(this.lanes.map((l) => l.task));
      if (this.o.listen) {
        const t = this.client.tasksSchema;
        try {
          this.subs.push(
            await this.client.driver.listen(`${t}_wake`, (payload) => this.onWake(payload)),
          );
          this.subs.push(
            await this.client.driver.listen(`${t}_cancel`, (payload) => this.onCancel(payload)),
          );
        } catch (err) {
          // Behind a transaction pooler without a direct URL the driver refuses
          // LISTEN (and warns once): the worker polls.
          if (!isListenRefused(err)) throw err;
        }
      }
      if (!this.drain) {
        await this.scheduler.start();
        this.pruner?.start();
      }
    } catch (err) {
      this.state = 'stopped';
      await this.closeResources();
      this.resolveRun?.();
      throw err;
    }
    if (this.o.handleSignals && !this.drain) {
      process.once('SIGINT', this.onSignal);
      process.once('SIGTERM', this.onSignal);
    }
    // Ready (health `running`) once it has reached the database and listens.
    this.recovery.start();
    this.fire('worker:ready');
    this.pump();
  }

  /**
   * Runs every job that is runnable now (including retries that become due
   * meanwhile) and resolves when none is left, then stops. Cron and pruning
   * do not run. This is what `pgferry/testing`'s drain uses.
   */
  async runUntilIdle(): Promise<DrainSummary> {
    const result = new Promise<DrainSummary>(
      (resolve) => (this.drain = { resolve, summary: { succeeded: 0, retried: 0, dead: 0 } }),
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
  stop(graceMs: number = this.o.shutdownGraceMs): Promise<void> {
    if (!this.stopPromise) this.stopPromise = this.shutdown(graceMs);
    return this.stopPromise;
  }

  private async shutdown(graceMs: number): Promise<void> {
    const wasNew = this.state === 'new';
    this.state = 'stopping';
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    if (!wasNew) {
      await this.scheduler.stop();
      await this.pruner?.stop();
      for (const l of this.lanes) {
        clearTimeout(l.sleepTimer);
        clearTimeout(l.retryTimer);
      }
      // Fetches in flight land in the buffers; wait for them, then give the buffers back.
      while (this.lanes.some((l) => l.fetching || l.refreshing))
        await new Promise((r) => setTimeout(r, 5));
      await Promise.all(this.lanes.map((l) => this.handBack(l, l.buffer.splice(0))));
      const all = () => Promise.all([...this.running.values()].map((r) => r.done));
      let graceTimer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        all().then(() => false),
        new Promise<boolean>((r) => (graceTimer = setTimeout(() => r(true), graceMs))),
      ]);
      clearTimeout(graceTimer);
      if (timedOut) {
        const left = [...this.running.values()];
        for (const r of left) {
          r.handedBack = true;
          r.controller.abort(new WorkerShutdownError());
        }
        const byLane = new Map<Lane, Leased[]>();
        for (const r of left)
          byLane.set(r.leased.lane, [...(byLane.get(r.leased.lane) ?? []), r.leased]);
        await Promise.all([...byLane].map(([lane, ls]) => this.handBack(lane, ls)));
      }
      await Promise.all(this.lanes.map((l) => this.flushAll(l)));
    }
    await this.closeResources();
    this.state = 'stopped';
    this.recovery.stop();
    this.fire('worker:stopped');
    this.resolveRun?.();
  }

  private async closeResources(): Promise<void> {
    for (const s of this.subs.splice(0)) await s.close().catch(() => undefined);
    if (this.ownsClient) await this.client.close();
  }

  // --- notifications ---------------------------------------------------------

  private onWake(payload: string | undefined): void {
    // An empty payload means "the LISTEN connection came back": wake all.
    const lanes =
      payload === undefined ? this.lanes : [this.byName.get(payload)].filter((l): l is Lane => !!l);
    for (const lane of lanes) {
      // The LISTEN connection is back, so the database is: retry at once.
      if (payload === undefined && lane.paused) {
        clearTimeout(lane.retryTimer);
        lane.retryTimer = undefined;
        lane.paused = false;
      }
      this.wakeLane(lane);
    }
    if (payload === undefined) this.pump();
  }

  private onCancel(payload: string | undefined): void {
    if (!payload) return;
    const i = payload.lastIndexOf(':');
    const name = payload.slice(0, i);
    const id = Number(payload.slice(i + 1));
    const key = `${name}:${id}`;
    const r = this.running.get(key);
    if (r) {
      r.controller.abort(new JobCancelledError(name, id));
      return;
    }
    const lane = this.byName.get(name);
    if (lane) lane.buffer = lane.buffer.filter((b) => b.m.msgId !== id);
  }

  private wakeLane(lane: Lane): void {
    lane.drained = false;
    if (!lane.sleeping) {
      lane.notified = true;
      return;
    }
    clearTimeout(lane.sleepTimer);
    lane.sleeping = false;
    this.pump();
  }

  // --- the loop ----------------------------------------------------------------

  private pump(): void {
    if (this.state !== 'running') return;
    this.dispatch();
    for (const lane of this.lanes) {
      // Refill before the local buffer runs dry, so handlers never wait for a
      // fetch round trip. Up to MAX_FETCHES run at once: a fetch mostly waits
      // for its commit, so two overlap well; the lane holds at most ~2 batches.
      while (
        lane.fetching < MAX_FETCHES &&
        !lane.sleeping &&
        !lane.drained &&
        !lane.paused &&
        (lane.fetching === 0 || !lane.lastFetchShort) &&
        lane.buffer.length + lane.fetching * this.o.batchSize <
          Math.max(this.o.concurrency, this.o.batchSize * 1.5)
      ) {
        void this.fetchLane(lane);
      }
    }
    this.checkDrained();
  }

  private dispatch(): void {
    while (this.running.size < this.o.concurrency && this.state === 'running') {
      let picked: Lane | undefined;
      for (let i = 0; i < this.lanes.length; i++) {
        const lane = this.lanes[(this.rr + i) % this.lanes.length]!;
        if (lane.buffer.length > 0 && !lane.refreshing) {
          picked = lane;
          this.rr = (this.rr + i + 1) % this.lanes.length;
          break;
        }
      }
      if (!picked) return;
      const next = picked.buffer[0]!;
      // A job that waited in the buffer has used part of its lease: renew the
      // lane's waiting jobs before starting any of them.
      if (Date.now() - next.leasedAt > this.o.leaseMarginMs / 2) {
        void this.refresh(picked);
        continue;
      }
      picked.buffer.shift();
      this.startJob(next);
    }
  }

  private leaseMs(task: AnyTask): number {
    return Math.min(task.timeoutMs + this.o.leaseMarginMs, 2_147_483_647);
  }

  private async fetchLane(lane: Lane): Promise<void> {
    lane.fetching++;
    lane.notified = false;
    const t = lane.task;
    const fetch = (): Promise<Message<unknown>[]> =>
      this.client.statements
        .fetch(
          this.client.driver,
          t.name,
          this.o.batchSize,
          this.leaseMs(t),
          t.lifo,
          t.grouped,
          t.priority !== undefined,
          t.concurrencyLimit ?? null,
        )
        .then((rows) => rows.map((r) => toMessage<unknown>(r)));
    try {
      let got = await fetch();
      this.recovery.ok();
      if (got.length === 0 && this.state === 'running') {
        if (this.drain) {
          lane.drained = true;
        } else {
          // Going to sleep: tell inserts to notify, then look once more
          // (an insert that committed in between is seen now).
          const next = await this.client.statements.idle(this.client.driver, t.name);
          got = await fetch();
          // A wake-up that arrived during these round trips may be for a job
          // committed after the fetch's snapshot: look again instead of sleeping.
          if (got.length === 0 && !lane.notified) this.sleep(lane, next);
        }
      }
      lane.lastFetchShort = got.length < this.o.batchSize;
      const now = Date.now();
      // Stopping meanwhile: shutdown hands the buffer back.
      for (const m of sortLeased(t, got)) lane.buffer.push({ lane, m, leasedAt: now });
      if (got.length > 0 && lane.sleeping) {
        // Another fetch of this lane went to sleep meanwhile, but there is work.
        clearTimeout(lane.sleepTimer);
        lane.sleeping = false;
      }
    } catch (err) {
      const delay = this.failed(err);
      if (!lane.paused) {
        lane.paused = true;
        lane.retryTimer = setTimeout(() => {
          lane.retryTimer = undefined;
          lane.paused = false;
          this.pump();
        }, delay);
      }
    } finally {
      lane.fetching--;
    }
    this.pump();
  }

  private sleep(lane: Lane, nextInMs: number | null): void {
    let ms = this.o.pollIntervalMs;
    if (nextInMs !== null) ms = Math.max(1, Math.min(ms, nextInMs + 1));
    lane.sleeping = true;
    lane.sleepTimer = setTimeout(() => {
      lane.sleeping = false;
      this.pump();
    }, ms);
  }

  private async refresh(lane: Lane): Promise<void> {
    if (lane.refreshing) return;
    lane.refreshing = true;
    try {
      const ids = lane.buffer.map((b) => b.m.msgId);
      const rcs = lane.buffer.map((b) => b.m.readCount);
      const kept = await this.client.statements.extend(
        this.client.driver,
        lane.task.name,
        ids,
        rcs,
        this.leaseMs(lane.task),
      );
      const now = Date.now();
      // Jobs no longer held (cancelled, or taken over) are dropped.
      lane.buffer = lane.buffer.filter((b) => kept.has(b.m.msgId));
      for (const b of lane.buffer) b.leasedAt = now;
    } catch (err) {
      this.fail(err);
      lane.buffer = [];
    } finally {
      lane.refreshing = false;
    }
    this.pump();
  }

  private startJob(leased: Leased): void {
    const { lane, m } = leased;
    const job = jobInfo(lane.task, m);
    const controller = new AbortController();
    const key = `${lane.task.name}:${m.msgId}`;
    const entry = { leased, job, controller, handedBack: false } as Running;
    this.running.set(key, entry);
    entry.done = this.execute(entry).finally(() => {
      this.running.delete(key);
      // A limited or grouped lane may have become runnable by this finish.
      if (lane.task.concurrencyLimit !== undefined || lane.task.grouped) this.wakeLane(lane);
      this.pump();
    });
  }

  private async execute(r: Running): Promise<void> {
    const { lane, m } = r.leased;
    const task = lane.task;
    const startedAt = Date.now();
    this.fire('job:start', r.job);
    let outcome: Outcome;
    try {
      outcome = await runAttempt(
        task,
        m,
        r.job,
        r.controller,
        this.o.leaseMarginMs / 2,
        this.logger,
      );
    } catch (err) {
      outcome = { kind: 'retry', error: err };
    }
    if (r.handedBack || outcome.kind === 'shutdown') return;
    try {
      switch (outcome.kind) {
        case 'success':
          lane.done.ids.push(m.msgId);
          lane.done.rcs.push(m.readCount);
          lane.done.jobs.push({ job: r.job, startedAt });
          // Not awaited: the slot is free at once, and completions made while
          // a flush runs go together in the next statement.
          void this.flush(lane);
          return;
        case 'cancelled':
          this.fire('job:cancelled', r.job);
          return;
        case 'retry': {
          this.fire('job:failure', r.job, outcome.error);
          const delay = retryDelayMs(task.backoff, r.job.attempt, outcome.error);
          const ok = await this.client.statements.retry(
            this.client.driver,
            task.name,
            m.msgId,
            m.readCount,
            delay,
            serialiseError(outcome.error),
          );
          if (ok) this.fire('job:retry', r.job, outcome.error, delay);
          if (this.drain) this.drain.summary.retried++;
          lane.drained = false;
          return;
        }
        case 'dead': {
          this.fire('job:failure', r.job, outcome.error);
          const id = await this.client.statements.deadLetter(
            this.client.driver,
            task.name,
            m.msgId,
            m.readCount,
            serialiseError(outcome.error),
          );
          this.fire('job:dead', r.job, outcome.error, id);
          if (this.drain) this.drain.summary.dead++;
          return;
        }
      }
    } catch (err) {
      // The job stays leased and comes back after its lease; nothing is lost.
      this.fail(err);
    }
  }

  /**
   * Finishes completed jobs in batches: while one statement runs, later
   * completions queue up and go in the next one.
   */
  private flush(lane: Lane): Promise<void> {
    if (lane.flushing) return lane.flushing;
    const batch = lane.done;
    if (batch.ids.length === 0) return Promise.resolve();
    lane.done = { ids: [], rcs: [], jobs: [] };
    lane.flushing = this.client.statements
      .complete(
        this.client.driver,
        lane.task.name,
        batch.ids,
        batch.rcs,
        lane.task.onComplete === 'archive',
        this.o.asyncCommit,
        // Other workers may be waiting for the slot or group this frees.
        lane.task.concurrencyLimit !== undefined || lane.task.grouped,
      )
      .then(
        () => {
          const now = Date.now();
          for (const { job, startedAt } of batch.jobs)
            this.fire('job:success', job, now - startedAt);
          if (this.drain) this.drain.summary.succeeded += batch.jobs.length;
        },
        (err: unknown) => {
          // Their leases run out and they run again: at-least-once, never lost.
          this.fail(err);
        },
      )
      .finally(() => {
        lane.flushing = undefined;
        // Finished jobs free a limited or grouped lane's next jobs.
        if (lane.task.concurrencyLimit !== undefined || lane.task.grouped) this.wakeLane(lane);
        if (lane.done.ids.length) void this.flush(lane);
        else this.pump();
      });
    return lane.flushing;
  }

  private async flushAll(lane: Lane): Promise<void> {
    while (lane.flushing || lane.done.ids.length) await this.flush(lane);
  }

  private async handBack(lane: Lane, leased: Leased[]): Promise<void> {
    if (leased.length === 0) return;
    try {
      await this.client.statements.handBack(
        this.client.driver,
        lane.task.name,
        leased.map((l) => l.m.msgId),
        leased.map((l) => l.m.readCount),
      );
    } catch (err) {
      // Not fatal: their leases run out and another worker takes them.
      this.fail(err);
    }
  }

  private checkDrained(): void {
    if (!this.drain || this.state !== 'running') return;
    const idle =
      this.running.size === 0 &&
      this.lanes.every(
        (l) =>
          l.drained &&
          !l.fetching &&
          l.buffer.length === 0 &&
          !l.flushing &&
          l.done.ids.length === 0,
      );
    if (idle) {
      const d = this.drain;
      this.drain = undefined;
      d.resolve(d.summary);
    }
  }
}

/** The SQL leases in no defined order; run them in the task's order. */
function sortLeased(task: AnyTask, ms: Message<unknown>[]): Message<unknown>[] {
  const prio = (m: Message<unknown>): number => Number(m.headers?.['x-pgferry-priority'] ?? 0) || 0;
  return ms.sort((a, b) => {
    if (task.priority !== undefined) {
      const d = prio(b) - prio(a);
      if (d !== 0) return d;
    }
    return task.lifo ? b.msgId - a.msgId : a.msgId - b.msgId;
  });
}
