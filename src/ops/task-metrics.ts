import type { Worker } from '../tasks/worker.js';
import type { JobInfo } from '../tasks/types.js';

/** Histogram bucket upper bounds, in seconds (Prometheus `le`). */
export const DURATION_BUCKETS_SECONDS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
] as const;

export interface TaskCounters {
  processed: number;
  succeeded: number;
  failed: number;
  retried: number;
  dead: number;
  cancelled: number;
  /** Cumulative counts per bucket (same order as DURATION_BUCKETS_SECONDS), then +Inf. */
  buckets: number[];
  durationSum: number;
  durationCount: number;
}

/**
 * Per-task counters and duration histograms, fed by Worker events in this
 * process (what Prometheus client libraries do: each worker process is a
 * scrape target). `attach(worker)` for every worker of the process.
 */
export class TaskMetrics {
  private readonly byTask = new Map<string, TaskCounters>();
  private readonly started = new Map<string, number>();
  private readonly now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? (() => performance.now());
  }

  /** Subscribes to a worker's events; returns a function that unsubscribes. */
  attach(worker: Worker): () => void {
    const key = (j: JobInfo): string => `${j.task}:${j.id}:${j.attempt}`;
    const start = (j: JobInfo): void => void this.started.set(key(j), this.now());
    const finish = (j: JobInfo): number => {
      const k = key(j);
      const t0 = this.started.get(k);
      this.started.delete(k);
      return t0 === undefined ? 0 : this.now() - t0;
    };
    const success = (j: JobInfo, ms: number): void => {
      finish(j);
      const c = this.counters(j.task);
      c.succeeded++;
      this.observe(c, ms);
    };
    const failure = (j: JobInfo): void => {
      const c = this.counters(j.task);
      c.failed++;
      this.observe(c, finish(j));
    };
    const retry = (j: JobInfo): void => void this.counters(j.task).retried++;
    const dead = (j: JobInfo): void => void this.counters(j.task).dead++;
    const cancelled = (j: JobInfo): void => {
      const c = this.counters(j.task);
      c.cancelled++;
      this.observe(c, finish(j));
    };
    const listeners = {
      'job:start': start,
      'job:success': success,
      'job:failure': failure,
      'job:retry': retry,
      'job:dead': dead,
      'job:cancelled': cancelled,
    };
    // One listener per event; the cast joins the worker's per-event overloads.
    const each = (how: 'on' | 'off'): void => {
      for (const [event, listener] of Object.entries(listeners)) {
        (worker[how] as (e: string, l: (...args: never[]) => void) => unknown).call(
          worker,
          event,
          listener,
        );
      }
    };
    each('on');
    return () => each('off');
  }

  /** A copy of the counters, by task name. */
  snapshot(): Map<string, TaskCounters> {
    return new Map([...this.byTask].map(([k, v]) => [k, { ...v, buckets: [...v.buckets] }]));
  }

  private counters(task: string): TaskCounters {
    let c = this.byTask.get(task);
    if (!c) {
      c = {
        processed: 0,
        succeeded: 0,
        failed: 0,
        retried: 0,
        dead: 0,
        cancelled: 0,
        buckets: new Array<number>(DURATION_BUCKETS_SECONDS.length + 1).fill(0),
        durationSum: 0,
        durationCount: 0,
      };
      this.byTask.set(task, c);
    }
    return c;
  }

  private observe(c: TaskCounters, ms: number): void {
    const s = ms / 1000;
    c.processed++;
    c.durationSum += s;
    c.durationCount++;
    DURATION_BUCKETS_SECONDS.forEach((le, i) => {
      if (s <= le) c.buckets[i]!++;
    });
    c.buckets[DURATION_BUCKETS_SECONDS.length]!++;
  }
}
