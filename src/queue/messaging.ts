import type { Driver, Executor } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import { traceReceive, traceSend, traceSendBatch } from '../telemetry/tracing.js';
import { durationMs, wholeSeconds } from './durations.js';
import { lockedMessages, type Arg } from './engine/calls.js';
import type { QueueEngine } from './engine/index.js';
import { readVt, vtArg, vtOf, vtOfValue } from './engine/vt.js';
import { groupedReadFunction, type GroupedReadMode, type GroupedReadOptions } from './grouped.js';
import type { BatchHandler, ProcessBatchOptions } from './process.js';
import { epochToMessage, MESSAGE_COLUMNS, toMessage, type MessageRow } from './rows.js';
import type {
  Message,
  PopOptions,
  ReadWithPollOptions,
  SendBatchOptions,
  SendOptions,
} from './types.js';
import { checkInt, checkMsgId, checkMsgIds, encodeBatch, toJson } from './validate.js';

// The messaging operations of QueueClient (send, read, finish), argument
// checks included; the client delegates to them. Statements: engine/.

export const byMsgId = (a: Message<unknown>, b: Message<unknown>): number => a.msgId - b.msgId;

export function conditionalJson(conditional: unknown): string {
  return conditional === undefined || conditional === null
    ? '{}'
    : toJson('conditional', conditional);
}

export function send<T>(
  e: QueueEngine,
  exec: Executor,
  queue: string,
  message: T,
  options: SendOptions,
): Promise<number> {
  const body = toJson('message', message);
  // A send span when tracing is on; its traceparent goes into the headers.
  return traceSend(
    queue,
    options.headers,
    (h) =>
      e.messages.send(exec, queue, body, h == null ? null : toJson('headers', h), vtOf(options)),
    (id) => id,
  );
}

export function sendBatch<T>(
  e: QueueEngine,
  exec: Executor,
  queue: string,
  messages: readonly T[],
  options: SendBatchOptions,
): Promise<number[]> {
  const { bodies, headers } = encodeBatch(messages, options.headers);
  const vt = vtOf(options);
  // One send span when tracing is on; its traceparent goes into every message's headers.
  return traceSendBatch(queue, bodies.length, (tc) => {
    const traced =
      tc === null
        ? headers
        : bodies.map((_, i) => toJson('headers', { ...(options.headers?.[i] ?? {}), ...tc }));
    return e.messages.sendBatch(exec, queue, bodies, traced, vt);
  });
}

/**
 * Every read function (`read`, `read_with_poll`, the FIFO group reads and
 * their `_with_poll` forms): `(queue, vt, qty[, max_poll, interval][, conditional])`.
 * Rows come back in the function's order (for round robin that order is the API).
 */
export async function readBy<T>(
  e: QueueEngine,
  exec: Executor,
  fn: string,
  queue: string,
  options: ReadWithPollOptions,
  how: { poll: boolean; conditional: boolean; traced?: boolean },
): Promise<Message<T>[]> {
  const qty = checkInt('qty', options.qty ?? 1, { min: 0 });
  const [vt, vtType] = readVt(options);
  const args: Arg[] = [
    [queue, 'text'],
    [vt, vtType],
    [qty, 'integer'],
  ];
  let waitMs = 0;
  if (how.poll) {
    const maxPollMs = durationMs(options, 'maxPollMs', 'maxPollSeconds', { min: 0 }) ?? 5000;
    const maxPoll = wholeSeconds(maxPollMs);
    const interval = checkInt('pollIntervalMs', options.pollIntervalMs ?? 100, { min: 1 });
    args.push([maxPoll, 'integer'], [interval, 'integer']);
    waitMs = maxPoll * 1000;
  }
  const conditional = conditionalJson(options.conditional);
  if (how.conditional) args.push([conditional, 'jsonb']);
  const go = async (): Promise<Message<T>[]> => {
    // `read` without polling: one prepared statement (engine/read.ts), unless it defers.
    if (fn === 'read' && how.conditional && !how.poll) {
      const rows = await e.reader.read(exec, queue, qty, conditional, [vt, vtType]);
      if (rows !== null) return rows.map((r) => epochToMessage<T>(r));
    }
    const rows = await e.call<MessageRow>(exec, fn, args, {
      select: MESSAGE_COLUMNS,
      prepare: !how.poll,
      timeoutExtraMs: waitMs,
    });
    return rows.map((r) => toMessage<T>(r));
  };
  // A receive span when tracing is on (`read`: what the OTel hooks trace).
  return how.traced ? traceReceive(queue, go) : go();
}

const SQL_MODE = { grouped: 'grouped', roundRobin: 'rr', head: 'head' } as const;

/**
 * A FIFO group read without polling: the one prepared statement of
 * engine/grouped.ts, or the SQL function (`read_grouped`, `_rr`, `_head`)
 * when that statement leaves the read to it (dead letters due, too few
 * groups in the first prefix, a candidate taken meanwhile, qty 0). Same
 * arguments, checks and results as readBy with the function.
 */
export async function readGrouped<T>(
  e: QueueEngine,
  exec: Executor,
  mode: GroupedReadMode,
  queue: string,
  options: GroupedReadOptions,
): Promise<Message<T>[]> {
  const qty = checkInt('qty', options.qty ?? 1, { min: 0 });
  const vt = readVt(options);
  if (qty >= 1 && Object.hasOwn(SQL_MODE, mode)) {
    const rows = await e.grouped.read(exec, queue, SQL_MODE[mode], qty, vt);
    if (rows !== null) return rows.map((r) => toMessage<T>(r));
  }
  return readBy<T>(e, exec, groupedReadFunction(mode, false), queue, options, {
    poll: false,
    conditional: false,
  });
}

export async function pop<T>(
  e: QueueEngine,
  exec: Executor,
  queue: string,
  options: PopOptions,
): Promise<Message<T>[]> {
  const qty = checkInt('qty', options.qty ?? 1, { min: 0 });
  const rows = await e.call<MessageRow>(
    exec,
    'pop',
    [
      [queue, 'text'],
      [qty, 'integer'],
    ],
    { select: MESSAGE_COLUMNS, prepare: true },
  );
  return rows.map((r) => toMessage<T>(r)).sort(byMsgId);
}

/** archive / delete of one id (→ whether it existed) or of a list (→ which existed). */
export async function finish(
  e: QueueEngine,
  exec: Executor,
  how: 'archive' | 'delete',
  queue: string,
  ids: number | readonly number[],
): Promise<boolean | number[]> {
  const list = Array.isArray(ids) ? checkMsgIds(ids) : [checkMsgId(ids)];
  // Named only if a lock timeout needs it (joining 100 ids: ~1.7 µs per call otherwise).
  const done = await e.messages[how](exec, queue, list, () => lockedMessages(queue, list));
  return Array.isArray(ids) ? done : done.length > 0;
}

export async function setVisibilityTimeout<T>(
  e: QueueEngine,
  exec: Executor,
  queue: string,
  ids: number | readonly number[],
  vt: number | Date,
): Promise<Message<T>[]> {
  const list = Array.isArray(ids) ? checkMsgIds(ids) : [checkMsgId(ids)];
  const rows = await e.call<MessageRow>(
    exec,
    'set_vt',
    [[queue, 'text'], [list, 'bigint[]'], vtArg(vtOfValue('vt', vt))],
    {
      select: MESSAGE_COLUMNS,
      prepare: true,
      lockTimeoutMs: e.lockTimeoutMs,
      composite: true,
      locked: lockedMessages(queue, list),
    },
  );
  return rows.map((r) => toMessage<T>(r)).sort(byMsgId);
}

/** processBatch: lock, handle and finish a batch in one transaction (see QueueClient.processBatch). */
export function processBatch<T>(
  e: QueueEngine,
  driver: Driver,
  queue: string,
  handler: BatchHandler<T>,
  options: ProcessBatchOptions,
): Promise<number> {
  const qty = checkInt('qty', options.qty ?? 10, { min: 1 });
  const how = options.finish ?? 'delete';
  if (how !== 'delete' && how !== 'archive') {
    throw new InvalidArgumentError(`finish must be 'delete' or 'archive', got ${String(how)}`);
  }
  const conditional = conditionalJson(options.conditional);
  return driver.transaction(async (tx) => {
    const rows = await e.messages.readLocked(tx, queue, qty, conditional);
    if (rows.length === 0) return 0;
    const messages = rows.map((r) => epochToMessage<T>(r)).sort(byMsgId);
    await handler(messages, tx);
    const ids = messages.map((m) => m.msgId);
    await e.messages.finishLocked(tx, queue, how, ids);
    return ids.length;
  });
}
