import { execute } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import { MESSAGE_COLUMNS, toMessage, type MessageRow } from '../queue/rows.js';
import type { Headers } from '../queue/types.js';
import type { TaskClient } from './client.js';
import { H } from './headers.js';

/** A job that failed for good, as kept in `<task>_dlq`. */
export interface DeadLetter {
  /** Its msg_id in the dead-letter queue. */
  id: number;
  task: string;
  /** The original input, untouched. */
  input: unknown;
  /** The error of the last attempt: class, name, message, stack. */
  error: { class?: string; name?: string; message?: string; stack?: string; [k: string]: unknown };
  attempts: number;
  /** The job's id in the task queue. */
  originalId: number | null;
  enqueuedAt: Date | null;
  failedAt: Date | null;
  headers: Headers;
}

/** Which dead letters an operation applies to: ids, an error class/name, or all. */
export type DeadLetterFilter = { ids: readonly number[] } | { errorName: string } | { all: true };

export class DeadLetters {
  constructor(
    private readonly client: TaskClient,
    readonly task: string,
  ) {}

  /** Dead letters, oldest first. */
  async list(
    options: { limit?: number; afterId?: number; errorName?: string } = {},
  ): Promise<DeadLetter[]> {
    const t = await this.client.statements.table(this.client.driver, this.task + '_dlq');
    const res = await execute<MessageRow>(
      this.client.driver,
      `SELECT ${MESSAGE_COLUMNS} FROM ${t}
        WHERE msg_id > $1 AND ($2::text IS NULL OR headers -> '${H.error}' ->> 'class' = $2 OR headers -> '${H.error}' ->> 'name' = $2)
        ORDER BY msg_id LIMIT $3`,
      [options.afterId ?? 0, options.errorName ?? null, options.limit ?? 100],
    );
    return res.rows.map((r) => this.toDeadLetter(r));
  }

  async get(id: number): Promise<DeadLetter | null> {
    const t = await this.client.statements.table(this.client.driver, this.task + '_dlq');
    const res = await execute<MessageRow>(
      this.client.driver,
      `SELECT ${MESSAGE_COLUMNS} FROM ${t} WHERE msg_id = $1`,
      [id],
    );
    return res.rows[0] ? this.toDeadLetter(res.rows[0]) : null;
  }

  async count(): Promise<number> {
    const t = await this.client.statements.table(this.client.driver, this.task + '_dlq');
    const res = await execute<{ n: string }>(this.client.driver, `SELECT count(*) AS n FROM ${t}`);
    return Number(res.rows[0]!.n);
  }

  /**
   * Enqueues dead letters again as new jobs (attempts start over). The new
   * job has header x-pgferry-rescheduled-from = the dead letter's id; the
   * dead letter is archived with x-pgferry-rescheduled-as = the new job id.
   */
  async reschedule(filter: DeadLetterFilter): Promise<{ deadId: number; newId: number }[]> {
    const [ids, name] = filterArgs(filter);
    const res = await execute<{ dead_id: string; new_id: string }>(
      this.client.driver,
      `SELECT dead_id, new_id FROM ${this.client.statements.t}.reschedule_dead($1::text, $2::bigint[], $3::text) ORDER BY dead_id`,
      [this.task, ids, name],
    );
    return res.rows.map((r) => ({ deadId: Number(r.dead_id), newId: Number(r.new_id) }));
  }

  /** Deletes dead letters for good; returns how many. */
  async purge(filter: DeadLetterFilter): Promise<number> {
    const [ids, name] = filterArgs(filter);
    const res = await execute<{ n: string }>(
      this.client.driver,
      `SELECT ${this.client.statements.t}.purge_dead($1::text, $2::bigint[], $3::text) AS n`,
      [this.task, ids, name],
    );
    return Number(res.rows[0]!.n);
  }

  private toDeadLetter(r: MessageRow): DeadLetter {
    const m = toMessage(r);
    const h = m.headers ?? {};
    const num = (v: unknown): number | null => (v === undefined || v === null ? null : Number(v));
    const date = (v: unknown): Date | null => (typeof v === 'string' ? new Date(v) : null);
    return {
      id: m.msgId,
      task: this.task,
      input: m.message,
      error: (h[H.error] as DeadLetter['error']) ?? {},
      attempts: num(h[H.attempts]) ?? 0,
      originalId: num(h[H.originalMsgId]),
      enqueuedAt: date(h[H.originalEnqueuedAt]),
      failedAt: date(h[H.failedAt]),
      headers: h,
    };
  }
}

function filterArgs(filter: DeadLetterFilter): [number[] | null, string | null] {
  if ('ids' in filter) {
    if (!Array.isArray(filter.ids) || filter.ids.some((i) => !Number.isSafeInteger(i))) {
      throw new InvalidArgumentError('ids must be an array of integers');
    }
    return [[...filter.ids], null];
  }
  if ('errorName' in filter) {
    if (typeof filter.errorName !== 'string' || !filter.errorName)
      throw new InvalidArgumentError('errorName must be a non-empty string');
    return [null, filter.errorName];
  }
  if ('all' in filter && filter.all === true) return [null, null];
  throw new InvalidArgumentError('give { ids }, { errorName } or { all: true }');
}
