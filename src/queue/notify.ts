import type { Driver, Executor, Subscription } from '../driver/types.js';
import type { Arg } from './engine/calls.js';
import type { QueueEngine } from './engine/index.js';
import { checkInt } from './validate.js';

/** Which table event notifies: inserts (PGMQ) or deletes (PGMQ 1.11.3). */
export type NotifyEvent = 'insert' | 'delete';

/** One row of `list_notify_insert_throttles()` / `list_notify_delete_throttles()`. */
export interface NotifyThrottle {
  queueName: string;
  /** Minimum gap between two notifications of the queue (0: one per inserting transaction). */
  throttleIntervalMs: number;
  lastNotifiedAt: Date;
}

/** PGMQ's default throttle for `enable_notify_insert`. */
export const DEFAULT_THROTTLE_INTERVAL_MS = 250;

/**
 * The channel the queue's trigger notifies on: `<schema>.q_<queue>.INSERT`
 * (PGMQ 1.13.1's `pgmq.q_<name>.INSERT` in the default schema; the queue
 * name keeps its case). See sql/queue/0002_fifo_topics_notify.sql.
 */
export function notifyChannel(
  schema: string,
  queue: string,
  event: NotifyEvent = 'insert',
): string {
  return `${schema}.q_${queue}.${event.toUpperCase()}`;
}

type Ev = 'Insert' | 'Delete';
type Throttle = { tx?: Executor; throttleIntervalMs?: number };

/**
 * QueueClient's eight notification methods, two per verb, one per event
 * (inserts: PGMQ's `enable_notify_insert` …; deletes: PGMQ 1.11.3, which
 * wake FIFO consumers when a group head is finished):
 * `enableNotifyInsert(queue, { throttleIntervalMs = 250, tx })`,
 * `disableNotifyInsert(queue, { tx })`,
 * `updateNotifyInsert(queue, throttleIntervalMs, { tx })`,
 * `listNotifyInsertThrottles({ tx })`, and the same for `Delete`.
 */
export type NotifyMethods = {
  [E in Ev as `enableNotify${E}`]: (queue: string, options?: Throttle) => Promise<void>;
} & {
  [E in Ev as `disableNotify${E}`]: (queue: string, options?: { tx?: Executor }) => Promise<void>;
} & {
  [E in Ev as `updateNotify${E}`]: (
    queue: string,
    throttleIntervalMs: number,
    options?: { tx?: Executor },
  ) => Promise<void>;
} & {
  [E in Ev as `listNotify${E}Throttles`]: (options?: {
    tx?: Executor;
  }) => Promise<NotifyThrottle[]>;
};

/** The events and their method-name part. */
export const NOTIFY_EVENTS = [
  ['Insert', 'insert'],
  ['Delete', 'delete'],
] as const;

/** What the client's notification methods do: turn on, turn off, retune. */
export type NotifyOp = 'enable' | 'disable' | 'update';

/**
 * The one implementation behind the eight notification methods
 * (`enableNotifyInsert` … `listNotifyDeleteThrottles`): `<op>_notify_<event>`.
 * `throttleIntervalMs` defaults to PGMQ's 250 for enable; update requires it.
 */
export async function notifyOp(
  e: QueueEngine,
  exec: Executor,
  op: NotifyOp,
  event: NotifyEvent,
  queue: string,
  throttleIntervalMs?: number,
): Promise<void> {
  const args: Arg[] = [[queue, 'text']];
  if (op !== 'disable') {
    const ms =
      op === 'enable' ? (throttleIntervalMs ?? DEFAULT_THROTTLE_INTERVAL_MS) : throttleIntervalMs;
    args.push([checkInt('throttleIntervalMs', ms, { min: 0 }), 'integer']);
  }
  await e.call(exec, `${op}_notify_${event}`, args);
}

/** `list_notify_<event>_throttles()`. */
export async function listThrottles(
  e: QueueEngine,
  exec: Executor,
  event: NotifyEvent,
): Promise<NotifyThrottle[]> {
  const rows = await e.call<{
    queue_name: string;
    throttle_interval_ms: number;
    last_notified_at: Date | string;
  }>(exec, `list_notify_${event}_throttles`, []);
  return rows.map((r) => ({
    queueName: r.queue_name,
    throttleIntervalMs: Number(r.throttle_interval_ms),
    lastNotifiedAt:
      r.last_notified_at instanceof Date ? r.last_notified_at : new Date(r.last_notified_at),
  }));
}

/** LISTENs (on the driver's dedicated connection) for the queue's notifications. */
export function listen(
  driver: Driver,
  schema: string,
  queue: string,
  event: NotifyEvent,
  handler: () => void,
): Promise<Subscription> {
  return driver.listen(notifyChannel(schema, queue, event), () => handler());
}
