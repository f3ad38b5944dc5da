import { PgferryError, registerSqlState } from '../errors.js';

/** Input failed the task's schema (on enqueue: nothing was sent). */
export class TaskValidationError extends PgferryError {
  /** The validator's issues, as Standard Schema reports them. */
  readonly issues: readonly { message: string; path?: readonly unknown[] }[];
  constructor(task: string, issues: readonly { message: string; path?: readonly unknown[] }[]) {
    super('PGFERRY_TASK_VALIDATION', `invalid input for task "${task}": ${formatIssues(issues)}`);
    this.issues = issues;
  }
}

/** A handler ran past its task's `timeoutMs` (its AbortSignal was aborted with this). */
export class JobTimeoutError extends PgferryError {
  constructor(task: string, timeoutMs: number) {
    super('PGFERRY_JOB_TIMEOUT', `task "${task}" timed out after ${timeoutMs} ms`);
  }
}

/** The job was cancelled while running (its AbortSignal was aborted with this). */
export class JobCancelledError extends PgferryError {
  constructor(task: string, id: number) {
    super('PGFERRY_JOB_CANCELLED', `job ${id} of task "${task}" was cancelled`);
  }
}

/** The worker is shutting down and gave the job back (its AbortSignal was aborted with this). */
export class WorkerShutdownError extends PgferryError {
  constructor() {
    super('PGFERRY_WORKER_SHUTDOWN', 'the worker is shutting down; the job was handed back');
  }
}

/** A job was leased more often than its task allows (workers died or lost it mid-run). */
export class AttemptsExhaustedError extends PgferryError {
  constructor(task: string, attempts: number) {
    super(
      'PGFERRY_ATTEMPTS_EXHAUSTED',
      `task "${task}": attempt ${attempts} exceeds the allowed attempts (earlier leases ran out)`,
    );
  }
}

/** A task definition or a call made against it is wrong (raised in TypeScript or as SQLSTATE PF301). */
export class TaskConfigError extends PgferryError {
  constructor(message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super('PGFERRY_TASK_CONFIG', message, options);
  }
}

registerSqlState('PF301', (message, options) => new TaskConfigError(message, options));

function formatIssues(issues: readonly { message: string; path?: readonly unknown[] }[]): string {
  return issues
    .slice(0, 5)
    .map((i) => {
      const path = (i.path ?? [])
        .map((p) =>
          typeof p === 'object' && p !== null && 'key' in p
            ? String((p as { key: unknown }).key)
            : String(p),
        )
        .join('.');
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join('; ');
}
