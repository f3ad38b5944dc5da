import type { DeadLetterRecord } from '../dead-letter.js';
import type { Executor } from '../driver/types.js';
import { call, type Arg } from './engine/calls.js';
import { MESSAGE_COLUMNS, toMessage, type MessageRow } from './rows.js';
import type { Message, TxOption } from './types.js';
import { checkInt, checkMsgId, checkQueueName } from './validate.js';

/**
 * Dead letters (pgferry addition): a per-queue policy moves a message that
 * was read `maxReadCount` times and became visible again to a dead-letter
 * queue (an ordinary queue), at the next read of its queue. The message gets
 * these headers (all prefixed `x-pgferry-dlq-`), which requeueing removes:
 */
export const DEAD_LETTER_HEADERS = {
  sourceQueue: 'x-pgferry-dlq-source-queue',
  sourceMsgId: 'x-pgferry-dlq-source-msg-id',
  readCount: 'x-pgferry-dlq-read-count',
  enqueuedAt: 'x-pgferry-dlq-enqueued-at',
  movedAt: 'x-pgferry-dlq-moved-at',
  /** The original headers, only when they were not a JSON object (null, array, scalar). */
  originalHeaders: 'x-pgferry-dlq-headers',
} as const;

export interface DeadLetterPolicy {
  /** Queue the policy applies to. */
  queueName: string;
  /** Queue dead letters are moved to (must exist). */
  deadLetterQueue: string;
  /** Reads allowed before a message is dead-lettered (at least 1). */
  maxReadCount: number;
}

export interface SetDeadLetterPolicyOptions extends TxOption {
  deadLetterQueue: string;
  maxReadCount: number;
}

/** Where a dead letter came from, parsed from its headers. */
export interface DeadLetterOrigin {
  sourceQueue: string;
  sourceMsgId: number;
  readCount: number;
  enqueuedAt: Date;
  movedAt: Date;
}

/**
 * A message of a dead-letter queue; `origin` is null for messages that were
 * sent there directly. It also carries the one dead-letter record shape
 * (`id`, `source`, `sourceId`, `payload`, `reason`, `attempts`, `failedAt`).
 */
export interface DeadLetter<T = unknown> extends Message<T>, DeadLetterRecord<T> {
  origin: DeadLetterOrigin | null;
}

export interface ListDeadLettersOptions extends TxOption {
  /** How many at most. Default 100. */
  qty?: number;
  /** Only dead letters with a msg_id above this (paging). Default 0. */
  afterMsgId?: number;
  /** Only dead letters from this queue. */
  sourceQueue?: string;
}

export interface DeadLetterFilterOptions extends TxOption {
  /** Only dead letters from this queue. */
  sourceQueue?: string;
}

interface PolicyRow {
  queue_name: string;
  dead_letter_queue: string;
  max_read_count: number;
}

export async function setDeadLetterPolicy(
  exec: Executor,
  s: string,
  queue: string,
  options: SetDeadLetterPolicyOptions,
): Promise<void> {
  checkQueueName(options.deadLetterQueue);
  const max = checkInt('maxReadCount', options.maxReadCount, { min: 1 });
  await call(exec, s, 'set_dead_letter_policy', [
    [queue, 'text'],
    [options.deadLetterQueue, 'text'],
    [max, 'integer'],
  ]);
}

export async function getDeadLetterPolicy(
  exec: Executor,
  s: string,
  queue: string,
): Promise<DeadLetterPolicy | null> {
  const r = (await call<PolicyRow>(exec, s, 'get_dead_letter_policy', [[queue, 'text']]))[0];
  return r
    ? {
        queueName: r.queue_name,
        deadLetterQueue: r.dead_letter_queue,
        maxReadCount: Number(r.max_read_count),
      }
    : null;
}

export async function clearDeadLetterPolicy(
  exec: Executor,
  s: string,
  queue: string,
): Promise<boolean> {
  return (await call<{ r: boolean }>(exec, s, 'clear_dead_letter_policy', [[queue, 'text']]))[0]!.r;
}

export async function listDeadLetters<T>(
  exec: Executor,
  s: string,
  deadLetterQueue: string,
  options: ListDeadLettersOptions,
): Promise<DeadLetter<T>[]> {
  const qty = checkInt('qty', options.qty ?? 100, { min: 0 });
  const after = checkMsgId(options.afterMsgId ?? 0);
  if (options.sourceQueue !== undefined) checkQueueName(options.sourceQueue);
  const args: Arg[] = [
    [deadLetterQueue, 'text'],
    [qty, 'integer'],
    [after, 'bigint'],
    [options.sourceQueue ?? null, 'text'],
  ];
  const rows = await call<MessageRow>(exec, s, 'list_dead_letters', args, {
    select: MESSAGE_COLUMNS,
  });
  return rows.map((r) => {
    const m = toMessage<T>(r);
    const origin = originOf(m.headers);
    return {
      ...m,
      origin,
      id: m.msgId,
      source: origin?.sourceQueue ?? null,
      sourceId: origin?.sourceMsgId ?? null,
      payload: m.message,
      reason: origin ? `read ${origin.readCount} times (max read count)` : null,
      attempts: origin?.readCount ?? m.readCount,
      failedAt: origin?.movedAt ?? null,
    };
  });
}

/** Moves one dead letter back to its queue; the new msg_id there, or null when there is no such dead letter. */
export async function requeueDeadLetter(
  exec: Executor,
  s: string,
  deadLetterQueue: string,
  msgId: number,
): Promise<number | null> {
  const rows = await call<{ r: string | null }>(exec, s, 'requeue_dead_letter', [
    [deadLetterQueue, 'text'],
    [checkMsgId(msgId), 'bigint'],
  ]);
  const id = rows[0]?.r;
  return id == null ? null : Number(id);
}

export async function requeueDeadLetters(
  exec: Executor,
  s: string,
  deadLetterQueue: string,
  options: DeadLetterFilterOptions,
): Promise<number> {
  return moveOrPurge(exec, s, 'requeue_dead_letters', deadLetterQueue, options);
}

export async function purgeDeadLetters(
  exec: Executor,
  s: string,
  deadLetterQueue: string,
  options: DeadLetterFilterOptions,
): Promise<number> {
  return moveOrPurge(exec, s, 'purge_dead_letters', deadLetterQueue, options);
}

/** requeue_dead_letters / purge_dead_letters: (dead-letter queue, source queue or null) → how many. */
async function moveOrPurge(
  exec: Executor,
  s: string,
  fn: string,
  deadLetterQueue: string,
  options: DeadLetterFilterOptions,
): Promise<number> {
  if (options.sourceQueue !== undefined) checkQueueName(options.sourceQueue);
  const rows = await call<{ r: string }>(exec, s, fn, [
    [deadLetterQueue, 'text'],
    [options.sourceQueue ?? null, 'text'],
  ]);
  return Number(rows[0]!.r);
}

function originOf(headers: Message['headers']): DeadLetterOrigin | null {
  const h = DEAD_LETTER_HEADERS;
  if (!headers || typeof headers[h.sourceQueue] !== 'string') return null;
  return {
    sourceQueue: headers[h.sourceQueue] as string,
    sourceMsgId: Number(headers[h.sourceMsgId]),
    readCount: Number(headers[h.readCount]),
    enqueuedAt: new Date(String(headers[h.enqueuedAt])),
    movedAt: new Date(String(headers[h.movedAt])),
  };
}
