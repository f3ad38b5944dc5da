import type { Executor } from '../driver/types.js';
import { checkNoNul } from '../payload.js';
import { InvalidArgumentError } from '../errors.js';
import { traceReceive, traceSend, tracingEnabled } from '../telemetry/tracing.js';
import { eventTraceContext } from '../telemetry/stream-tracing.js';
import { StreamClientAdmin } from './admin.js';
import type { StreamClientOptions } from './base.js';
import { durationMs, toSeconds } from './durations.js';
import { mapStreamError } from './errors.js';
import { StreamStatements } from './statements.js';
import { messageParams, toMessage, type MessageRow } from './rows.js';
import type * as T from './types.js';
import { checkConsumerName, checkPositiveInt, checkStreamName, toJsonText } from './validate.js';

export type { StreamClientOptions };

/** `nack` as one statement: the event as a `message` row, the delay in seconds, the reason. */
export const NACK_SQL = `SELECT @s@.nack($1, ROW($2, $3, $4, $5, $6, $7, $8, $9, $10, $11)::@s@.message, make_interval(secs => $12), $13)`;

/** One producing path: the prepared statement, else the SQL function (plain, or with ev_extra4). */
interface SendPath<D, R> {
  /** The prepared statement (src/stream/statements.ts); null: run the SQL function. */
  prepared(
    statements: StreamStatements,
    exec: Executor,
    stream: string,
    type: string | null,
    data: D,
    extra4: string | null,
  ): Promise<R | null>;
  /** The SQL function call: $1 stream, $2 type, $3 payload(s); the result is column `r`. */
  fn: string;
  /** The same with $4 = ev_extra4 (the trace context). */
  fnExtra4: string;
  read(r: unknown): R;
  id(r: R): number | string;
}

const SEND: SendPath<string | null, number> = {
  prepared: (st, exec, stream, type, data, extra4) => st.send(exec, stream, type, data, extra4),
  fn: `SELECT @s@.send($1, $2, $3::jsonb) AS r`,
  fnExtra4: `SELECT @s@.insert_event($1, $2, $3::jsonb::text, NULL, NULL, NULL, $4) AS r`,
  read: (r) => Number(r),
  id: (id) => id,
};

const SEND_BATCH: SendPath<(string | null)[], number[]> = {
  prepared: (st, exec, stream, type, data, extra4) =>
    st.sendBatch(exec, stream, type, data, extra4),
  fn: `SELECT @s@.send_batch($1, $2, $3::jsonb[]) AS r`,
  // send_batch has no extra columns: insert_event per payload, ids in input order.
  fnExtra4: `SELECT coalesce(array_agg(@s@.insert_event($1, $2, u.d::text, NULL, NULL, NULL, $4) ORDER BY u.i), '{}') AS r
               FROM unnest($3::jsonb[]) WITH ORDINALITY AS u(d, i)`,
  read: (r) => (r as string[]).map(Number),
  id: (ids) => ids.join(','),
};

/**
 * The stream client: PgQue's SQL API, typed. Producing (`send`, `sendBatch`)
 * and the low-level consuming calls take `{ tx }` to run in the caller's
 * transaction — a send is then published exactly when that transaction commits.
 */
export class StreamClient extends StreamClientAdmin {
  private readonly statements: StreamStatements;

  constructor(options: StreamClientOptions = {}) {
    super(options);
    this.statements = new StreamStatements(this.schema);
  }

  // Streams ------------------------------------------------------------------

  /** Creates a stream; false when it already exists. */
  async createStream(name: string, options: T.TxOption = {}): Promise<boolean> {
    return this.flag(`SELECT @s@.create_queue($1) AS r`, [checkStreamName(name)], options.tx);
  }

  /** Drops a stream; with `force`, unsubscribes its consumers first. */
  async dropStream(name: string, options: T.TxOption & { force?: boolean } = {}): Promise<void> {
    await this.q(
      `SELECT @s@.drop_queue($1, $2)`,
      [checkStreamName(name), options.force ?? false],
      options.tx,
    );
  }

  /**
   * `set_queue_config`; `null` resets the parameter to its default. The
   * interval parameters take PgQue's interval text or a number of milliseconds.
   */
  async setConfig<K extends keyof T.StreamConfig>(
    name: string,
    param: K,
    value: T.StreamConfig[K] | null,
    options: T.TxOption = {},
  ): Promise<void> {
    await this.q(
      `SELECT @s@.set_queue_config($1, $2, $3)`,
      [name, param, configText(param, value)],
      options.tx,
    );
  }

  // Producing ----------------------------------------------------------------

  /**
   * Publishes one event (JSON payload); returns its id. Visible once the
   * transaction commits and a tick follows. Runs a prepared INSERT that does
   * what `send()` does (src/stream/statements.ts), else `send()` itself.
   */
  async send(stream: string, payload: unknown, options: T.StreamSendOptions = {}): Promise<number> {
    const data = payload === null ? null : toJsonText('payload', payload);
    return this.produce(checkStreamName(stream), eventType(options.type), data, options.tx, SEND);
  }

  /** Publishes several events of one type in one statement; ids line up with `payloads`. */
  async sendBatch(
    stream: string,
    payloads: readonly unknown[],
    options: T.StreamSendOptions = {},
  ): Promise<number[]> {
    if (!Array.isArray(payloads)) throw new InvalidArgumentError('payloads must be an array');
    const data = payloads.map((p, i) => (p === null ? null : toJsonText(`payloads[${i}]`, p)));
    const name = checkStreamName(stream);
    return this.produce(name, eventType(options.type), data, options.tx, SEND_BATCH);
  }

  /**
   * The prepared path, then the SQL function when it declines (null); with
   * tracing on, inside a PRODUCER span whose context goes into ev_extra4
   * (src/telemetry/stream-tracing.ts). With tracing off no closure is made:
   * a send is on the hot path.
   */
  private produce<D, R>(
    stream: string,
    type: string | null,
    data: D,
    tx: Executor | undefined,
    path: SendPath<D, R>,
  ): Promise<R> {
    if (!tracingEnabled()) return this.insert(stream, type, data, tx, path, null);
    return traceSend(
      stream,
      null,
      (headers) => this.insert(stream, type, data, tx, path, eventTraceContext(headers)),
      path.id,
    );
  }

  private async insert<D, R>(
    stream: string,
    type: string | null,
    data: D,
    tx: Executor | undefined,
    path: SendPath<D, R>,
    extra4: string | null,
  ): Promise<R> {
    let r: R | null;
    try {
      r = await path.prepared(this.statements, tx ?? this.driver, stream, type, data, extra4);
    } catch (err) {
      throw mapStreamError(err);
    }
    if (r !== null) return r;
    const rows = await this.q<{ r: unknown }>(
      extra4 === null ? path.fn : path.fnExtra4,
      extra4 === null ? [stream, type, data] : [stream, type, data, extra4],
      tx,
      true,
    );
    return path.read(rows[0]!.r);
  }

  // Consuming (low level) ----------------------------------------------------------

  async subscribe(stream: string, consumer: string, options: T.TxOption = {}): Promise<boolean> {
    return this.flag(
      `SELECT @s@.subscribe($1, $2) AS r`,
      [checkStreamName(stream), checkConsumerName('consumer name', consumer)],
      options.tx,
    );
  }

  async unsubscribe(stream: string, consumer: string, options: T.TxOption = {}): Promise<boolean> {
    return this.flag(`SELECT @s@.unsubscribe($1, $2) AS r`, [stream, consumer], options.tx);
  }

  /** The consumer's current batch (opening the next one if none is active); [] when nothing is ready. */
  async receive<M = unknown>(
    stream: string,
    consumer: string,
    options: T.ReceiveOptions = {},
  ): Promise<T.StreamMessage<M>[]> {
    const max = checkPositiveInt('maxMessages', options.maxMessages ?? 100);
    const rows = await traceReceive(stream, () =>
      this.q<MessageRow>(
        `SELECT * FROM @s@.receive($1, $2, $3)`,
        [stream, consumer, max],
        options.tx,
        true,
      ),
    );
    return rows.map((r) => toMessage<M>(r));
  }

  /** Finishes a batch: true, or false when it was unknown or already finished (stale). */
  async ack(batchId: number, options: T.TxOption = {}): Promise<boolean> {
    return this.flag(`SELECT @s@.ack($1) AS r`, [batchId], options.tx, true);
  }

  /** Schedules one event of an active batch for redelivery, or dead-letters it at max_retries. */
  async nack(
    batchId: number,
    msg: T.StreamMessage<unknown>,
    options: T.NackOptions = {},
  ): Promise<void> {
    const retry = durationMs(options, 'retryAfterMs', 'retryAfterSeconds', 60_000);
    await this.q(
      NACK_SQL,
      [batchId, ...messageParams(msg), toSeconds(retry), options.reason ?? null],
      options.tx,
      true,
    );
  }

  // Cooperative consumers -----------------------------------------------------------

  async subscribeSubconsumer(
    stream: string,
    consumer: string,
    subconsumer: string,
    options: T.TxOption & { convertNormal?: boolean } = {},
  ): Promise<boolean> {
    return this.flag(
      `SELECT @s@.subscribe_subconsumer($1, $2, $3, $4) AS r`,
      [stream, consumer, subconsumer, options.convertNormal ?? false],
      options.tx,
    );
  }

  /** `batchHandling: 1` nacks the member's active batch for the group before leaving. */
  async unsubscribeSubconsumer(
    stream: string,
    consumer: string,
    subconsumer: string,
    options: T.TxOption & { batchHandling?: 0 | 1 } = {},
  ): Promise<boolean> {
    return this.flag(
      `SELECT @s@.unsubscribe_subconsumer($1, $2, $3, $4) AS r`,
      [stream, consumer, subconsumer, options.batchHandling ?? 0],
      options.tx,
    );
  }

  async receiveCoop<M = unknown>(
    stream: string,
    consumer: string,
    subconsumer: string,
    options: T.ReceiveCoopOptions = {},
  ): Promise<T.StreamMessage<M>[]> {
    const max = checkPositiveInt('maxMessages', options.maxMessages ?? 100);
    const dead = durationMs(options, 'deadIntervalMs', 'deadIntervalSeconds');
    const rows = await this.q<MessageRow>(
      RECEIVE_COOP_SQL,
      [stream, consumer, subconsumer, max, toSeconds(dead)],
      options.tx,
      true,
    );
    return rows.map((r) => toMessage<M>(r));
  }

  /** Heartbeat of a cooperative member: true if it exists. */
  async touchSubconsumer(
    stream: string,
    consumer: string,
    subconsumer: string,
    options: T.TxOption = {},
  ): Promise<boolean> {
    return this.flag(
      `SELECT @s@.touch_subconsumer($1, $2, $3) AS r`,
      [stream, consumer, subconsumer],
      options.tx,
      true,
    );
  }
}

/** `receive_coop` as one statement; $5 = the dead interval in seconds (null: never). */
export const RECEIVE_COOP_SQL = `SELECT * FROM @s@.receive_coop($1, $2, $3, $4, make_interval(secs => $5))`;

/** The event type sent with a payload: `default` when not given; NUL refused like in payloads. */
function eventType(type: string | null | undefined): string | null {
  if (type === undefined) return 'default';
  return typeof type === 'string' ? checkNoNul('type', type) : type;
}

const INTERVAL_PARAMS: ReadonlySet<string> = new Set([
  'ticker_max_lag',
  'ticker_idle_period',
  'rotation_period',
]);

/** A `set_queue_config` value as text: a number of milliseconds for an interval parameter as `'<n> milliseconds'`. */
function configText(param: string, value: unknown): string | null {
  if (value === null) return null;
  if (INTERVAL_PARAMS.has(param) && typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw new InvalidArgumentError(
        `${param} in milliseconds must be a non-negative number, got ${String(value)}`,
      );
    }
    return `${value} milliseconds`;
  }
  return String(value);
}
