import { PgferryError } from '../errors.js';

/** An error as the tasks engine stores it (x-pgferry-error, job_results.error). */
export interface StoredError {
  class: string;
  name: string;
  message: string;
  stack: string | null;
  code?: string | number;
  /** On a flow parent failed by its child (ChildJobFailedError): that child. */
  child?: { task: string; id: number; state: string; error: StoredError | null };
  [key: string]: unknown;
}

/** waitForResult: the job died (dead letter) or was cancelled; `jobError` is what it failed with. */
export class JobFailedError extends PgferryError {
  constructor(
    readonly task: string,
    readonly id: number,
    readonly state: 'dead' | 'cancelled',
    readonly jobError: StoredError | null,
  ) {
    super(
      'PGFERRY_JOB_FAILED',
      state === 'dead'
        ? `job ${id} of task "${task}" died: ${jobError?.class ?? 'Error'}: ${jobError?.message ?? ''}`
        : `job ${id} of task "${task}" was cancelled`,
    );
  }
}

/** waitForResult: the job had not finished when `timeoutMs` ran out (it may still finish later). */
export class ResultTimeoutError extends PgferryError {
  constructor(
    readonly task: string,
    readonly id: number,
    readonly timeoutMs: number,
    readonly lastState: string,
  ) {
    super(
      'PGFERRY_RESULT_TIMEOUT',
      `job ${id} of task "${task}" did not finish within ${timeoutMs} ms (last seen ${lastState})`,
    );
  }
}

/** result/waitForResult: no such job, or its archive row and stored result were pruned. */
export class JobNotFoundError extends PgferryError {
  constructor(
    readonly task: string,
    readonly id: number,
  ) {
    super(
      'PGFERRY_JOB_NOT_FOUND',
      `job ${id} of task "${task}" is unknown (never enqueued, or pruned after its retention)`,
    );
  }
}

/** A handler's result (or a progress value) is larger than allowed; the job is dead-lettered. */
export class ResultTooLargeError extends PgferryError {
  constructor(what: string, bytes: number, maxBytes: number) {
    super(
      'PGFERRY_RESULT_TOO_LARGE',
      `${what} is ${bytes} bytes of JSON, over the ${maxBytes} allowed`,
    );
  }
}

/** ctx.complete(tx): the job is no longer this attempt's (its lease ran out, or it was cancelled); roll back. */
export class JobNotHeldError extends PgferryError {
  constructor(
    readonly task: string,
    readonly id: number,
  ) {
    super(
      'PGFERRY_JOB_NOT_HELD',
      `job ${id} of task "${task}" is no longer held by this attempt (lease ran out or cancelled)`,
    );
  }
}
