import type { DeadLetterRecord } from '../dead-letter.js';
import { InvalidArgumentError } from '../errors.js';
import { toMessage, type Arg, type Headers, type MessageRow } from '../queue/index.js';
import type { TaskClient } from './client.js';
import { H } from './headers.js';

/**
 * A job that failed for good, as kept in `<task>_dlq`. It also carries the
 * one dead-letter record shape (`source` = the task, `sourceId` = the job's
 * id, `payload` = the input, `reason` = the last error's message).
 */
export interface DeadLetter extends DeadLetterRecord {
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
    const rows = await this.records.list(this.client.driver, this.dlq, {
      afterId: options.afterId ?? 0,
      limit: options.limit ?? 100,
      ...(options.errorName == null
        ? {}
        : {
            headerMatch: { header: H.error, fields: ['class', 'name'], value: options.errorName },
          }),
    });
    return rows.map((r) => this.toDeadLetter(r));
  }

  async get(id: number): Promise<DeadLetter | null> {
    const row = await this.records.get(this.client.driver, this.dlq, id);
    return row ? this.toDeadLetter(row) : null;
  }

  count(): Promise<number> {
    return this.records.count(this.client.driver, this.dlq);
  }

  private get records() {
    return this.client.statements.queue.records;
  }

  private get dlq(): string {
    return this.task + '_dlq';
  }

  /**
   * Puts dead letters back: enqueues them again as new jobs (attempts start
   * over). The new job has header x-pgferry-rescheduled-from = the dead
   * letter's id; the dead letter is archived with x-pgferry-rescheduled-as =
   * the new job id.
   */
  async requeue(filter: DeadLetterFilter): Promise<{ deadId: number; newId: number }[]> {
    const [ids, name] = filterArgs(filter);
    const rows = await this.client.statements.call<{ dead_id: string; new_id: string }>(
      this.client.driver,
      'reschedule_dead',
      this.filterCall(ids, name),
      { select: 'dead_id, new_id' },
    );
    return rows
      .sort((a, b) => Number(a.dead_id) - Number(b.dead_id))
      .map((r) => ({ deadId: Number(r.dead_id), newId: Number(r.new_id) }));
  }

  /** @deprecated Use {@link DeadLetters.requeue} (the one put-back verb); kept for one release. */
  reschedule(filter: DeadLetterFilter): Promise<{ deadId: number; newId: number }[]> {
    return this.requeue(filter);
  }

  /** Deletes dead letters for good; returns how many. */
  async purge(filter: DeadLetterFilter): Promise<number> {
    const [ids, name] = filterArgs(filter);
    const rows = await this.client.statements.call<{ r: string }>(
      this.client.driver,
      'purge_dead',
      this.filterCall(ids, name),
    );
    return Number(rows[0]!.r);
  }

  private filterCall(ids: number[] | null, name: string | null): Arg[] {
    return [
      [this.task, 'text'],
      [ids, 'bigint[]'],
      [name, 'text'],
    ];
  }

  private toDeadLetter(r: MessageRow): DeadLetter {
    const m = toMessage(r);
    const h = m.headers ?? {};
    const num = (v: unknown): number | null => (v === undefined || v === null ? null : Number(v));
    const date = (v: unknown): Date | null => (typeof v === 'string' ? new Date(v) : null);
    const error = (h[H.error] as DeadLetter['error']) ?? {};
    return {
      id: m.msgId,
      task: this.task,
      input: m.message,
      error,
      attempts: num(h[H.attempts]) ?? 0,
      originalId: num(h[H.originalMsgId]),
      enqueuedAt: date(h[H.originalEnqueuedAt]),
      failedAt: date(h[H.failedAt]),
      headers: h,
      source: this.task,
      sourceId: num(h[H.originalMsgId]),
      payload: m.message,
      reason: typeof error.message === 'string' ? error.message : null,
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
