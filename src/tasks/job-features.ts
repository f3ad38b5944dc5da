import { execute, type Executor } from '../driver/types.js';
import type { Logger } from '../logger.js';
import type { Headers } from '../queue/index.js';
import type { JobMessage } from './lease.js';
import type { TaskClient } from './client.js';
import { TaskConfigError } from './errors.js';
import { childResults, type ChildResult } from './flows.js';
import { H } from './headers.js';
import { JobNotHeldError } from './outcome-errors.js';
import { encodeResult } from './results.js';
import type { TaskStatements } from './statements.js';
import type { AnyTask } from './types.js';

/** Largest progress value, in bytes of JSON: 64 KiB. */
export const MAX_PROGRESS_BYTES = 65_536;

/** The parts of a handler's context that reach the database (see JobContext). */
export interface JobFeatures {
  progress(value: unknown): void;
  complete(tx: Executor, options?: { result?: unknown }): Promise<void>;
  childResults: ChildResult[];
}

/**
 * The features without a database (pgferry/testing's runTask): progress
 * values are checked and handed to `onProgress`, ctx.complete(tx) checks its
 * arguments (there is no job row to complete).
 */
export function inlineFeatures(
  o: { childResults?: ChildResult[]; onProgress?: (value: unknown) => void } = {},
): JobFeatures {
  return {
    childResults: o.childResults ?? [],
    progress: (value) => {
      encodeResult(value, MAX_PROGRESS_BYTES, 'progress');
      o.onProgress?.(value);
    },
    complete: async (tx, opts = {}) => {
      checkTx(tx);
      encodeResult(opts.result);
      await Promise.resolve();
    },
  };
}

export const noFeatures: JobFeatures = inlineFeatures();

function checkTx(tx: Executor): void {
  if (typeof (tx as { query?: unknown } | null)?.query !== 'function')
    throw new TaskConfigError('ctx.complete needs your transaction (an object with query())');
}

/**
 * `<tasks>.complete_results`: completes jobs (fenced by read_ct), stores
 * their results (null: none) and counts flow children, in one statement.
 */
export function completeResults(
  exec: Executor,
  st: TaskStatements,
  queue: string,
  ids: number[],
  readCounts: number[],
  results: (string | null)[],
  archive: boolean,
  asyncCommit: boolean,
  notify: boolean,
): Promise<unknown[]> {
  return st.call(
    exec,
    'complete_results',
    [
      [queue, 'text'],
      [ids, 'bigint[]'],
      [readCounts, 'integer[]'],
      [results, 'jsonb[]'],
      [archive, 'boolean'],
      [asyncCommit, 'boolean'],
      [notify, 'boolean'],
    ],
    { prepare: true },
  );
}

/** Whether completing this job needs complete_results (it is a flow child). */
export const isFlowChild = (m: JobMessage): boolean => m.headers?.[H.parent] !== undefined;

/** A flow child's parent task (whose job this child's finish may release), or undefined. */
export function parentTask(headers: Headers | null | undefined): string | undefined {
  const p = headers?.[H.parent] as { task?: unknown } | undefined;
  return typeof p?.task === 'string' ? p.task : undefined;
}

/** What a JobRun works with: the job and its worker's settings. */
export interface JobRunSetup {
  readonly client: TaskClient;
  readonly task: AnyTask;
  readonly m: JobMessage;
  /** Progress is written at most this often. */
  readonly intervalMs: number;
  /** Completions notify (the task frees a concurrency or group slot). */
  readonly notify: boolean;
  readonly logger: Logger;
}

/**
 * One running job's progress writer, in-transaction completion and flow
 * children. Progress is throttled: the first value is written at once, later
 * ones at most every `intervalMs`, and only the latest value of an interval
 * (a handler reporting in a tight loop costs one UPDATE per interval).
 */
export class JobRun implements JobFeatures {
  childResults: ChildResult[] = [];
  /** ctx.complete(tx) finished the job in the handler's transaction. */
  completedInTx = false;
  private pending: { text: string } | undefined;
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastWrite = 0;
  private closed = false;

  /** `s`: the job and its worker's settings (run-holder.ts makes a JobRun on first use). */
  constructor(private readonly s: JobRunSetup) {}

  async load(): Promise<void> {
    this.childResults = await childResults(
      this.s.client.driver,
      this.s.client.statements,
      this.s.task.name,
      this.s.m.msgId,
    );
  }

  readonly progress = (value: unknown): void => {
    if (this.closed) return;
    this.pending = { text: encodeResult(value, MAX_PROGRESS_BYTES, 'progress') ?? 'null' };
    this.schedule();
  };

  private schedule(): void {
    if (this.writing || this.timer || !this.pending) return;
    const wait = this.lastWrite + this.s.intervalMs - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, wait);
      return;
    }
    const { text } = this.pending;
    this.pending = undefined;
    this.lastWrite = Date.now();
    this.writing = this.s.client.statements
      .call(
        this.s.client.driver,
        'progress',
        [
          [this.s.task.name, 'text'],
          [this.s.m.msgId, 'bigint'],
          [this.s.m.readCount, 'integer'],
          [text, 'jsonb'],
        ],
        { prepare: true },
      )
      .then(
        () => undefined,
        (err: unknown) =>
          this.s.logger.warn({ err, job: this.s.m.msgId }, 'pgferry worker: progress not stored'),
      )
      .finally(() => {
        this.writing = undefined;
        if (!this.closed) this.schedule();
      });
  }

  /** After the handler: writes the last reported value now, then stops. */
  settle(): Promise<void> | undefined {
    this.closed ||= !this.writing && !this.timer && !this.pending;
    // No progress reported (or all written): nothing to wait for, no extra tick.
    return this.closed ? undefined : this.flushProgress();
  }

  private async flushProgress(): Promise<void> {
    for (;;) {
      // A finished write may have set a timer for the pending value: write it now instead.
      clearTimeout(this.timer);
      this.timer = undefined;
      if (this.writing) await this.writing;
      else if (this.pending && !this.closed) {
        this.lastWrite = 0;
        this.schedule();
      } else break;
    }
    this.closed = true;
  }

  readonly complete = async (tx: Executor, o: { result?: unknown } = {}): Promise<void> => {
    if (this.completedInTx)
      throw new TaskConfigError('ctx.complete was already called for this job');
    if (this.closed) throw new TaskConfigError('ctx.complete was called after the attempt ended');
    checkTx(tx);
    const result = encodeResult(o.result);
    // A progress write from the pool now would wait for (and then miss) the
    // row this deletes: the last value goes into the transaction instead.
    clearTimeout(this.timer);
    this.timer = undefined;
    const last = this.pending;
    this.pending = undefined;
    await this.writing;
    this.closed = true;
    const st = this.s.client.statements;
    const key: [string, number, number] = [this.s.task.name, this.s.m.msgId, this.s.m.readCount];
    if (last)
      await execute(tx, `SELECT ${st.t}.progress($1::text, $2::bigint, $3::integer, $4::jsonb)`, [
        ...key,
        last.text,
      ]);
    const rows = await execute<{ r: string }>(
      tx,
      `SELECT r FROM ${st.t}.complete_results($1::text, $2::bigint[], $3::integer[], $4::jsonb[], $5::boolean, false, $6::boolean) AS r`,
      [key[0], [key[1]], [key[2]], [result], this.s.task.onComplete === 'archive', this.s.notify],
    );
    if (rows.rows.length === 0) throw new JobNotHeldError(this.s.task.name, this.s.m.msgId);
    this.completedInTx = true;
  };
}
