// pgferry/tasks: typed background jobs on the queue engine. Explicit exports only.
export { defineTask, TASK_NAME } from './define.js';
export { TaskClient, type JobSnapshot, type JobState, type TaskClientOptions } from './client.js';
export { DeadLetters, type DeadLetter, type DeadLetterFilter } from './dead-letters.js';
export { Worker, type DrainSummary, type WorkerOptions, type WorkerStats } from './worker.js';
export type { WorkerEvents, WorkerHooks } from './events.js';
export type { PruneOptions } from './pruner.js';
export type { Backoff } from './backoff.js';
export { retryDelayMs } from './backoff.js';
export { isTask } from './types.js';
export type { RateLimit } from './controls.js';
export type { ControlEnqueueOptions, KeyWindow } from './unique.js';
export type { JobFilter } from './bulk.js';
export type {
  AnyTask,
  BatchItem,
  CronSchedule,
  EnqueuedJob,
  EnqueueOptions,
  Handler,
  JobContext,
  JobInfo,
  RetryOn,
  Task,
  TaskOptions,
} from './types.js';
export {
  AttemptsExhaustedError,
  JobCancelledError,
  JobTimeoutError,
  TaskConfigError,
  TaskValidationError,
  WorkerShutdownError,
} from './errors.js';
export { ON_TIME_WINDOW_MS } from './scheduler.js';
export { MAX_RESULT_BYTES, type JobResult, type WaitForResultOptions } from './results.js';
export {
  type ChildFailurePolicy,
  type ChildResult,
  type EnqueuedFlow,
  type FlowJob,
  type FlowSpec,
} from './flows.js';
export { type JobAttempt } from './history.js';
export { MAX_PROGRESS_BYTES } from './job-features.js';
export {
  JobFailedError,
  JobNotFoundError,
  JobNotHeldError,
  ResultTimeoutError,
  ResultTooLargeError,
  type StoredError,
} from './outcome-errors.js';
