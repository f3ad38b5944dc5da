import { execute, type Driver } from '../driver/types.js';
import { resolveDriver } from '../driver/resolve.js';
import type { PoolerOptions } from '../driver/pooler.js';
import type { DeadlineOptions } from '../driver/deadlines.js';
import { quoteIdent } from '../driver/quote.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { checkSchemaName } from '../migrate/schema-name.js';
import {
  toBackendMessages,
  type BackendMessage,
  type BackendRow,
  type PublishArgs,
  type BackendReadOptions,
  type BusBackend,
} from './types.js';
import { ASYNC_COMMIT, Waker, longPoll, wakeChannel } from './wake.js';
import { BusNotMemberError } from './errors.js';

export interface IsolatedBackendOptions extends DeadlineOptions, PoolerOptions {
  /**
   * A driver connected as a role that holds only the bus grant (`pgferry_bus`).
   * It needs two connections at once when LISTEN is unavailable (one held by
   * the long-poll, one for publishes). The backend never closes a driver it
   * was given.
   */
  driver?: Driver;
  /** Connection string when no driver is given (otherwise `DATABASE_URL` / `PG*`). */
  connectionString?: string;
  /** Schema of the bus functions. Default `public`. */
  schema?: string;
  logger?: Logger;
  /**
   * Wait for the WAL flush before a publish counts as done (default true).
   * false commits this backend's publishes asynchronously (a message
   * published just before a server crash can be lost; publish latency loses
   * the fsync). See docs/bus.md.
   */
  durablePublish?: boolean;
}

/** An undefined_function error (42883) naming a function whose name contains `part`. */
function missingFunction(err: unknown, part: string): boolean {
  const e = err as { sqlState?: string; code?: string; message?: string } | null;
  return (
    (e?.sqlState ?? e?.code) === '42883' &&
    typeof e?.message === 'string' &&
    e.message.includes(part)
  );
}

/** bus_peek itself does not exist, not a member's generated function. */
const isMissingPeek = (err: unknown): boolean => missingFunction(err, '.bus_peek(');

/**
 * A member's generated function vanished between the definer function's
 * membership check and its call to it (the member left or was reaped in
 * that instant): the same answer the check gives a moment later, PF502.
 */
function memberGone(err: unknown): unknown {
  if (!missingFunction(err, '._pgferry_bus_')) return err;
  return new BusNotMemberError('queue is not a member of this bus channel (it left meanwhile)', {
    cause: err,
    sqlState: 'PF502',
  });
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * What bus_publish accepts as headers (sql/bus/0004_headers.sql): the W3C
 * trace context only. Other keys are left out, and a `tracestate` the
 * server would refuse (over 512 characters, not printable ASCII) is dropped,
 * as W3C Trace Context allows, so a publish never fails over its headers.
 */
export function busHeaders(
  headers: Record<string, unknown> | null | undefined,
): Record<string, string> | null {
  const tp = headers?.traceparent;
  const ts = headers?.tracestate;
  const out: Record<string, string> = {};
  if (typeof tp === 'string' && TRACEPARENT.test(tp) && !tp.startsWith('ff')) out.traceparent = tp;
  if (typeof ts === 'string' && ts && ts.length <= 512 && /^[ -~]*$/.test(ts)) out.tracestate = ts;
  return out.traceparent ? out : null;
}

/**
 * The untrusting backend (pipecat's IsolatedPgmqBackend): it calls only the
 * SECURITY DEFINER functions bus_join / bus_publish / bus_read / bus_peek /
 * bus_subscribe_with_headers / bus_archive_many / bus_leave, so its role needs no privilege on the queue
 * engine. Queue names are server-allocated opaque ids; knowing the channel
 * is the capability. Wake-ups: LISTEN on the member's wake channel (which
 * bus_publish notifies), else bus_subscribe's own long-poll.
 */
export class IsolatedBackend implements BusBackend {
  readonly driver: Driver;
  private readonly ownsDriver: boolean;
  private readonly logger: Logger;
  private readonly wakers = new Map<string, Waker>();
  /** False once bus_peek was found missing (a schema before bus migration 0007). */
  private peeks = true;
  private readonly sql: {
    join: string;
    publish: string;
    publishInTx: string;
    subscribe: string;
    read: string;
    peek: string;
    archive: string;
    leave: string;
  };

  constructor(options: IsolatedBackendOptions = {}) {
    this.logger = options.logger ?? silentLogger;
    ({ driver: this.driver, owned: this.ownsDriver } = resolveDriver(options, this.logger));
    const s = quoteIdent(checkSchemaName(options.schema ?? 'public'));
    this.sql = {
      join: `SELECT ${s}.bus_join($1::text) AS q`,
      publish:
        options.durablePublish === false
          ? `SELECT p.ids FROM ${ASYNC_COMMIT}, ${s}.bus_publish($1::text, $2::text, $3::jsonb, $4::jsonb) AS p(ids)`
          : `SELECT ${s}.bus_publish($1::text, $2::text, $3::jsonb, $4::jsonb) AS ids`,
      // The caller's transaction commits as the caller set it up.
      publishInTx: `SELECT ${s}.bus_publish($1::text, $2::text, $3::jsonb, $4::jsonb) AS ids`,
      // Reads and archives commit without waiting for the WAL flush
      // (synchronous_commit off for this statement's own transaction only):
      // losing one in a crash only makes a message visible again, which
      // at-least-once delivery allows, and it takes an fsync off every
      // delivery's path. Publishes stay fully durable.
      subscribe: `SELECT r.msg_id, r.message, r.headers FROM ${ASYNC_COMMIT}, ${s}.bus_subscribe_with_headers($1::text, $2::text, $3::integer, $4::integer, $5::integer) AS r`,
      // Archives what the member handled, then reads without waiting: one call
      // per delivery (migration 0005).
      read: `SELECT r.msg_id, r.message, r.headers FROM ${ASYNC_COMMIT}, ${s}.bus_read($1::text, $2::text, $3::integer, $4::integer, $5::bigint[]) AS r`,
      // A listening member's read (migration 0007): hides nothing, skips by
      // id what the bus holds; writes only when it carries an archive.
      peek: `SELECT r.msg_id, r.message, r.headers FROM ${ASYNC_COMMIT}, ${s}.bus_peek($1::text, $2::text, $3::integer, $4::bigint[], $5::bigint[]) AS r`,
      // One membership check and one archive statement per batch (migration 0005).
      archive: `SELECT a.id::text FROM ${ASYNC_COMMIT}, ${s}.bus_archive_many($1::text, $2::text, $3::bigint[]) AS a(id)`,
      leave: `SELECT ${s}.bus_leave($1::text, $2::text)`,
    };
  }

  async join(channel: string): Promise<string> {
    const res = await this.driver.query<{ q: string }>(this.sql.join, [channel]);
    const queue = res.rows[0]!.q;
    this.wakers.set(queue, await Waker.open(this.driver, wakeChannel(queue, channel), this.logger));
    return queue;
  }

  /**
   * bus_publish on this backend's driver or, with `tx`, in the caller's
   * transaction (whose role then needs the bus grant). Of the headers only
   * the trace context is sent (busHeaders).
   */
  async publish(...[channel, myQueue, message, options = {}]: PublishArgs): Promise<number[]> {
    const headers = busHeaders(options.headers);
    const res = await execute<{ ids: string[] }>(
      options.tx ?? this.driver,
      options.tx ? this.sql.publishInTx : this.sql.publish,
      [channel, myQueue, JSON.stringify(message), headers && JSON.stringify(headers)],
      {
        prepare: true,
      },
    );
    return (res.rows[0]?.ids ?? []).map(Number);
  }

  /** Handled messages are archived by the next read (bus_read / bus_peek). */
  readonly archivesOnRead = true;

  listening(queue: string): boolean {
    return this.wakers.get(queue)?.listening === true;
  }

  read(queue: string, options: BackendReadOptions): Promise<BackendMessage[]> {
    let archive = options.archive ?? [];
    const waker = this.wakers.get(queue);
    // A listening member's reads hide nothing (bus_peek): the bus tells what it holds.
    const held = waker?.listening && options.held ? options.held : undefined;
    const readNow = async (): Promise<BackendMessage[]> => {
      let res: { rows: BackendRow[] } | undefined;
      if (held && this.peeks) {
        try {
          res = await this.driver.query<BackendRow>(
            this.sql.peek,
            [queue, options.channel, options.batchSize, archive, held],
            { prepare: true },
          );
        } catch (err) {
          if (!isMissingPeek(err)) throw err;
          // A schema before bus migration 0007: read with bus_read from now on.
          this.peeks = false;
          this.logger.warn(
            { err },
            'pgferry bus: bus_peek is missing (bus migration 0007 not applied); reading with bus_read',
          );
        }
      }
      res ??= await this.driver.query<BackendRow>(
        this.sql.read,
        [queue, options.channel, options.visibilityTimeoutSeconds, options.batchSize, archive],
        { prepare: true },
      );
      archive = [];
      return toBackendMessages(res.rows);
    };
    // Without LISTEN: bus_subscribe waits in the database (after readNow archived).
    const readWaiting = async (maxSeconds: number): Promise<BackendMessage[]> =>
      toBackendMessages(
        (
          await this.driver.query<BackendRow>(
            this.sql.subscribe,
            [
              queue,
              options.channel,
              options.visibilityTimeoutSeconds,
              options.batchSize,
              maxSeconds,
            ],
            // The long-poll waits in the database on purpose: extend the query deadline by it.
            { prepare: true, timeoutExtraMs: maxSeconds * 1000 },
          )
        ).rows,
      );
    return longPoll(waker, options, readNow, readWaiting).catch((err: unknown) => {
      throw memberGone(err);
    });
  }

  async archive(queue: string, channel: string, msgIds: readonly number[]): Promise<number[]> {
    if (msgIds.length === 0) return [];
    // bus_archive_many calls the member's generated archive function: the same race as a read.
    const res = await this.driver
      .query<{ id: string }>(this.sql.archive, [queue, channel, msgIds], { prepare: true })
      .catch((err: unknown) => {
        throw memberGone(err);
      });
    return res.rows.map((r) => Number(r.id));
  }

  async leave(queue: string, channel: string): Promise<void> {
    const waker = this.wakers.get(queue);
    this.wakers.delete(queue);
    await waker?.close();
    await this.driver.query(this.sql.leave, [queue, channel]);
  }

  /** Closes the driver if this backend made it. */
  async close(): Promise<void> {
    for (const w of this.wakers.values()) await w.close();
    this.wakers.clear();
    if (this.ownsDriver) await this.driver.close();
  }
}
