import { execute, type Driver, type Executor, type Subscription } from '../driver/types.js';
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

/** The SQL side of the client's notification methods. */
export class NotifySql {
  constructor(
    private readonly s: string,
    private readonly schema: string,
  ) {}

  async enable(
    exec: Executor,
    queue: string,
    event: NotifyEvent,
    throttleIntervalMs: number | undefined,
  ): Promise<void> {
    const ms = checkInt('throttleIntervalMs', throttleIntervalMs ?? DEFAULT_THROTTLE_INTERVAL_MS, {
      min: 0,
    });
    await execute(exec, `SELECT ${this.s}.enable_notify_${event}($1::text, $2::integer)`, [
      queue,
      ms,
    ]);
  }

  async disable(exec: Executor, queue: string, event: NotifyEvent): Promise<void> {
    await execute(exec, `SELECT ${this.s}.disable_notify_${event}($1::text)`, [queue]);
  }

  async update(
    exec: Executor,
    queue: string,
    event: NotifyEvent,
    throttleIntervalMs: number,
  ): Promise<void> {
    const ms = checkInt('throttleIntervalMs', throttleIntervalMs, { min: 0 });
    await execute(exec, `SELECT ${this.s}.update_notify_${event}($1::text, $2::integer)`, [
      queue,
      ms,
    ]);
  }

  async list(exec: Executor, event: NotifyEvent): Promise<NotifyThrottle[]> {
    const res = await execute<{
      queue_name: string;
      throttle_interval_ms: number;
      last_notified_at: Date | string;
    }>(exec, `SELECT * FROM ${this.s}.list_notify_${event}_throttles()`);
    return res.rows.map((r) => ({
      queueName: r.queue_name,
      throttleIntervalMs: Number(r.throttle_interval_ms),
      lastNotifiedAt:
        r.last_notified_at instanceof Date ? r.last_notified_at : new Date(r.last_notified_at),
    }));
  }

  /** LISTENs (on the driver's dedicated connection) for the queue's notifications. */
  listen(
    driver: Driver,
    queue: string,
    event: NotifyEvent,
    handler: () => void,
  ): Promise<Subscription> {
    return driver.listen(notifyChannel(this.schema, queue, event), () => handler());
  }
}
