import { execute, type Executor } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import { MESSAGE_COLUMNS, toMessage, type MessageRow } from './rows.js';
import type { Message, TxOption } from './types.js';
import { checkDate, checkInt } from './validate.js';

/**
 * Which FIFO group read (PGMQ §8):
 * - `grouped`: `read_grouped`, fills the batch from the oldest group first;
 * - `roundRobin`: `read_grouped_rr`, one message of every group, then the second…;
 * - `head`: `read_grouped_head`, at most one message (the head) per group.
 */
export type GroupedReadMode = 'grouped' | 'roundRobin' | 'head';

export interface GroupedReadOptions extends TxOption {
  /** Seconds the read messages stay invisible to other readers. Default 30. */
  visibilityTimeoutSeconds?: number;
  /** Absolute time until which read messages stay invisible. Excludes `visibilityTimeoutSeconds`. */
  visibleUntil?: Date;
  /** How many messages at most. Default 1. */
  qty?: number;
}

export interface GroupedReadWithPollOptions extends GroupedReadOptions {
  /** How long the database waits for a message. Default 5. */
  maxPollSeconds?: number;
  /** Pause between attempts inside the database. Default 100. */
  pollIntervalMs?: number;
}

const FUNCTIONS: Record<GroupedReadMode, string> = {
  grouped: 'read_grouped',
  roundRobin: 'read_grouped_rr',
  head: 'read_grouped_head',
};

/** The header that names a message's FIFO group. */
export const GROUP_HEADER = 'x-pgmq-group';

/**
 * Runs one of the group reads. Rows come back in the database's selection
 * order (for round robin that order is the API: first of every group, then
 * second…), so they are not re-sorted here.
 */
export async function readGroupedRows<T>(
  exec: Executor,
  schemaSql: string,
  queue: string,
  mode: GroupedReadMode,
  options: GroupedReadWithPollOptions,
  poll: boolean,
): Promise<Message<T>[]> {
  const qty = checkInt('qty', options.qty ?? 1, { min: 0 });
  const [vtExpr, vt] = groupedVt(options);
  const fn = FUNCTIONS[mode] + (poll ? '_with_poll' : '');
  const params: unknown[] = [queue, vt, qty];
  let extra = '';
  if (poll) {
    params.push(checkInt('maxPollSeconds', options.maxPollSeconds ?? 5, { min: 0 }));
    params.push(checkInt('pollIntervalMs', options.pollIntervalMs ?? 100, { min: 1 }));
    extra = ', $4::integer, $5::integer';
  }
  const res = await execute<MessageRow>(
    exec,
    `SELECT ${MESSAGE_COLUMNS} FROM ${schemaSql}.${fn}($1::text, ${vtExpr}, $3::integer${extra})`,
    params,
    { prepare: !poll, timeoutExtraMs: poll ? (params[3] as number) * 1000 : 0 },
  );
  return res.rows.map((r) => toMessage<T>(r));
}

function groupedVt(options: GroupedReadOptions): [string, number | Date] {
  if (options.visibleUntil !== undefined) {
    if (options.visibilityTimeoutSeconds !== undefined) {
      throw new InvalidArgumentError('give visibilityTimeoutSeconds or visibleUntil, not both');
    }
    return ['$2::timestamptz', checkDate('visibleUntil', options.visibleUntil)];
  }
  return [
    '$2::integer',
    checkInt('visibilityTimeoutSeconds', options.visibilityTimeoutSeconds ?? 30),
  ];
}

/** `create_fifo_index(queue)`, or `create_fifo_indexes_all()` when queue is undefined. */
export async function createFifoIndexSql(
  exec: Executor,
  schemaSql: string,
  queue: string | undefined,
): Promise<void> {
  if (queue === undefined) await execute(exec, `SELECT ${schemaSql}.create_fifo_indexes_all()`);
  else await execute(exec, `SELECT ${schemaSql}.create_fifo_index($1::text)`, [queue]);
}
