import type { Recovery } from '../../health.js';
import type { Logger } from '../../logger.js';
import type { TaskClient } from '../client.js';
import type { JobMessage } from '../lease.js';
import type { JobAbort } from '../run-job.js';
import type { WorkerEvents } from '../events.js';
import type { AnyTask, JobInfo } from '../types.js';
import type { DrainSummary, WorkerSettings } from './options.js';

/** A job leased into a lane's buffer. */
export interface Leased {
  lane: Lane;
  m: JobMessage;
  leasedAt: number;
}

/** Jobs whose handlers succeeded, waiting for the next completion statement. */
export interface Completed {
  ids: number[];
  rcs: number[];
  jobs: JobInfo[];
  /** When each job's handler started (Date.now()), for the job:success duration. */
  starts: number[];
  /** Each job's result as JSON (null: none); see completions.ts. */
  results: (string | null)[];
  /** A result or a flow child is in the batch: complete_results instead of complete. */
  extra: boolean;
}

/** One task's fetching state and local buffer. */
export interface Lane {
  task: AnyTask;
  buffer: Leased[];
  /** Jobs asked for per fetch now (adapts within the settings' batch bounds). */
  batch: number;
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
  /** A notification came while the lane was not sleeping: start a fetch beside the one in flight. */
  notified: boolean;
  /** Notifications so far: a fetch goes to sleep only if none came since it started. */
  wakes: number;
  /** The last fetch returned less than a batch: do not run a second fetch beside the next one. */
  lastFetchShort: boolean;
  /** Highest id of the last full fetch of a plain FIFO lane: the next fetches start after it. */
  after: number | undefined;
  /** When the lane last fetched over its whole queue (Date.now()). */
  wholeAt: number;
  done: Completed;
  flushing: Promise<void> | undefined;
  /** Jobs in the completion statements in flight. */
  flushingCount: number;
  /** The completion statements in flight, oldest first (at most two; completions.ts). */
  inFlight: { extra: boolean }[];
  /** Starts a second completion statement once the one in flight is slow. */
  overlapTimer: NodeJS.Timeout | undefined;
  /** A completion statement starts at the end of this event-loop turn (completions.ts). */
  flushSoon: boolean;
  /** The wake-up count when the last short fetch started (fetching.ts, idleFirst). */
  shortAtWakes: number | undefined;
  /** Jobs of this lane handed to handlers so far (fetching.ts, adapt). */
  started: number;
}

/** A handler in progress. */
export interface Running {
  leased: Leased;
  job: JobInfo;
  abort: JobAbort;
  handedBack: boolean;
  done: Promise<void>;
}

export type WorkerState = 'new' | 'running' | 'stopping' | 'stopped';

/** A runUntilIdle() in progress. */
export interface Drain {
  resolve: (s: DrainSummary) => void;
  summary: DrainSummary;
}

/** What the worker's parts (fetching, dispatch, completions, shutdown) share. */
export interface Core {
  readonly client: TaskClient;
  readonly o: WorkerSettings;
  readonly logger: Logger;
  readonly recovery: Recovery;
  readonly lanes: Lane[];
  readonly byName: Map<string, Lane>;
  /** Handlers in progress by `task:id`. */
  readonly running: Map<string, Running>;
  state: WorkerState;
  drain: Drain | undefined;
  /** Emits without letting a throwing listener break the worker. */
  fire<E extends keyof WorkerEvents>(event: E, ...args: WorkerEvents[E]): void;
  /** Logs and emits `worker:error`. */
  fail(err: unknown): void;
  /** A database call of the loop failed: emits `worker:error`, returns the back-off delay. */
  failed(err: unknown): number;
  /** Starts what can start: handlers, fetches; settles a drain. */
  pump(): void;
}

/** A lane's completions waiting for the next statement: none yet. */
export const emptyBatch = (): Completed => ({
  ids: [],
  rcs: [],
  jobs: [],
  starts: [],
  results: [],
  extra: false,
});

export function newLane(task: AnyTask, batch: number): Lane {
  return {
    task,
    buffer: [],
    batch,
    fetching: 0,
    refreshing: false,
    sleeping: false,
    sleepTimer: undefined,
    paused: false,
    retryTimer: undefined,
    drained: false,
    notified: false,
    wakes: 0,
    lastFetchShort: true,
    after: undefined,
    wholeAt: 0,
    done: emptyBatch(),
    flushing: undefined,
    flushingCount: 0,
    inFlight: [],
    overlapTimer: undefined,
    flushSoon: false,
    shortAtWakes: undefined,
    started: 0,
  };
}

/** A limited or grouped lane: a finished job may make another runnable, here or in another worker. */
export function frees(task: AnyTask): boolean {
  return task.concurrencyLimit !== undefined || task.grouped;
}
