import type { JobInfo } from './types.js';

/** Worker events (`worker.on(name, listener)`), also accepted as `hooks` in the options. */
export interface WorkerEvents {
  /** A handler is about to run. */
  'job:start': [job: JobInfo];
  /** The job finished and is recorded as done. */
  'job:success': [job: JobInfo, durationMs: number];
  /** An attempt failed (followed by job:retry or job:dead). */
  'job:failure': [job: JobInfo, error: unknown];
  /** Another attempt is scheduled after `delayMs`. */
  'job:retry': [job: JobInfo, error: unknown, delayMs: number];
  /** The job moved to the dead-letter queue as `deadLetterId`. */
  'job:dead': [job: JobInfo, error: unknown, deadLetterId: number | null];
  /** The job was cancelled while running. */
  'job:cancelled': [job: JobInfo];
  /** A worker-level problem (database unreachable, a hook threw); the worker keeps going. */
  'worker:error': [error: unknown];
  /** The worker is fetching. */
  'worker:ready': [];
  /** stop() finished: nothing running, leftovers handed back. */
  'worker:stopped': [];
}

export type WorkerHooks = { [E in keyof WorkerEvents]?: (...args: WorkerEvents[E]) => void };
