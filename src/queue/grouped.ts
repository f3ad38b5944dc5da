import type { Message, TxOption } from './types.js';

/**
 * Which FIFO group read (PGMQ §8):
 * - `grouped`: `read_grouped`, fills the batch from the oldest group first;
 * - `roundRobin`: `read_grouped_rr`, one message of every group, then the second…;
 * - `head`: `read_grouped_head`, at most one message (the head) per group.
 */
export type GroupedReadMode = 'grouped' | 'roundRobin' | 'head';

export interface GroupedReadOptions extends TxOption {
  /** Milliseconds the read messages stay invisible (whole seconds in PGMQ: rounded up). Default 30000. */
  visibilityTimeoutMs?: number;
  /** @deprecated Use `visibilityTimeoutMs` (this alias goes in the next release). */
  visibilityTimeoutSeconds?: number;
  /** Absolute time until which read messages stay invisible. Excludes `visibilityTimeoutMs`. */
  visibleUntil?: Date;
  /** How many messages at most. Default 1. */
  qty?: number;
}

export interface GroupedReadWithPollOptions extends GroupedReadOptions {
  /** How long the database waits for a message (whole seconds in PGMQ: rounded up). Default 5000. */
  maxPollMs?: number;
  /** @deprecated Use `maxPollMs` (this alias goes in the next release). */
  maxPollSeconds?: number;
  /** Pause between attempts inside the database. Default 100. */
  pollIntervalMs?: number;
}

const FUNCTIONS: Readonly<Record<GroupedReadMode, string>> = {
  grouped: 'read_grouped',
  roundRobin: 'read_grouped_rr',
  head: 'read_grouped_head',
};

/** The header that names a message's FIFO group. */
export const GROUP_HEADER = 'x-pgmq-group';

/** The read function of a group read mode (`_with_poll` appended for the polling form). */
export const groupedReadFunction = (mode: GroupedReadMode, poll: boolean): string =>
  FUNCTIONS[mode] + (poll ? '_with_poll' : '');

/** The group read modes by method-name part (`readGrouped`, `readGroupedRoundRobin`, `readGroupedHead`). */
export const GROUPED_READS = [
  ['', 'grouped'],
  ['RoundRobin', 'roundRobin'],
  ['Head', 'head'],
] as const;
type M = (typeof GROUPED_READS)[number][0];

/**
 * QueueClient's six FIFO group reads, one per mode and form:
 * `readGrouped` (`read_grouped`: fills the batch from the oldest group first,
 * SQS-FIFO style), `readGroupedRoundRobin` (`read_grouped_rr`: one message of
 * every group, then the second of every group…, in that order),
 * `readGroupedHead` (`read_grouped_head`: at most one message, the head, per
 * group), and each `…WithPoll` (the `_with_poll` function: the database
 * waits up to `maxPollMs`).
 */
export type GroupedReads = {
  [K in M as `readGrouped${K}`]: <T = unknown>(
    queue: string,
    options?: GroupedReadOptions,
  ) => Promise<Message<T>[]>;
} & {
  [K in M as `readGrouped${K}WithPoll`]: <T = unknown>(
    queue: string,
    options?: GroupedReadWithPollOptions,
  ) => Promise<Message<T>[]>;
};
