import type { Driver, Executor, Queryable } from '../driver/types.js';
import { execute } from '../driver/types.js';
import { resolveDriver, type ConnectionOptions } from '../driver/resolve.js';
import type { PoolerOptions } from '../driver/pooler.js';
import { checkNoNul } from '../payload.js';
import { quoteIdent } from '../driver/quote.js';
import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { checkSchemaName, migrate, type MigrateResult } from '../migrate/migrator.js';
import { traceReceive, traceSend } from '../telemetry/tracing.js';
import { mapStreamError } from './errors.js';
import { StreamStatements } from './statements.js';
import {
  messageParams,
  toConsumerInfo,
  toDeadLetter,
  toMessage,
  toStreamInfo,
  type MessageRow,
} from './rows.js';
import type {
  ConsumerInfo,
  DeadLetter,
  NackOptions,
  ReceiveCoopOptions,
  ReceiveOptions,
  StreamConfig,
  StreamInfo,
  StreamMessage,
  StreamSendOptions,
  TxOption,
} from './types.js';
import {
  checkConsumerName,
  checkNonNegative,
  checkPositiveInt,
  checkStreamName,
  toJsonText,
} from './validate.js';

export interface StreamClientOptions extends ConnectionOptions {
  /** Schema of the stream engine. Default `pgque`. */
  schema?: string;
  logger?: Logger;
}

/**
 * The stream client: PgQue's SQL API, typed. Producing (`send`, `sendBatch`)
 * and the low-level consuming calls take `{ tx }` to run in the caller's
 * transaction — a send is then published exactly when that transaction commits.
 */
export class StreamClient {
  readonly driver: Driver;
  readonly schema: string;
  readonly logger: Logger;
  readonly connectionString: string | undefined;
  /** The pooler settings this client was made with (its Consumers' Tickers use them too). */
  readonly pooler: PoolerOptions;
  private readonly ownsDriver: boolean;
  private readonly s: string;
  private readonly statements: StreamStatements;

  constructor(options: StreamClientOptions = {}) {
    this.schema = checkSchemaName(options.schema ?? 'pgque');
    this.s = quoteIdent(this.schema);
    this.statements = new StreamStatements(this.schema);
    this.logger = options.logger ?? silentLogger;
    this.connectionString = options.connectionString;
    this.pooler = {
      ...(options.pooler ? { pooler: options.pooler } : {}),
      ...(options.listenConnectionString
        ? { listenConnectionString: options.listenConnectionString }
        : {}),
    };
    ({ driver: this.driver, owned: this.ownsDriver } = resolveDriver(options, this.logger));
  }

  /** Installs or upgrades the stream engine in this client's schema. */
  migrate(): Promise<MigrateResult> {
    return migrate({
      driver: this.driver,
      components: ['stream'],
      schemas: { stream: this.schema },
      logger: this.logger,
    });
  }

  /** Runs `fn` in a transaction; pass the `tx` it gets to any method as `{ tx }`. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.driver.transaction(fn);
  }

  /** @internal Runs one statement of this client's SQL, mapping errors. */
  async q<R>(
    text: string,
    params: readonly unknown[] = [],
    tx?: Executor,
    prepare = false,
  ): Promise<R[]> {
    try {
      const res = await execute<R>(tx ?? this.driver, text.replaceAll('@s@', this.s), params, {
        prepare,
      });
      return res.rows;
    } catch (err) {
      throw mapStreamError(err);
    }
  }

  // Streams ------------------------------------------------------------------

  /** Creates a stream; false when it already exists. */
  async createStream(name: string, options: TxOption = {}): Promise<boolean> {
    const rows = await this.q<{ r: number }>(
      `SELECT @s@.create_queue($1) AS r`,
      [checkStreamName(name)],
      options.tx,
    );
    return rows[0]!.r === 1;
  }

  /** Drops a stream; with `force`, unsubscribes its consumers first. */
  async dropStream(name: string, options: TxOption & { force?: boolean } = {}): Promise<void> {
    await this.q(
      `SELECT @s@.drop_queue($1, $2)`,
      [checkStreamName(name), options.force ?? false],
      options.tx,
    );
  }

  /** `set_queue_config`; `null` resets the parameter to its default. */
  async setConfig<K extends keyof StreamConfig>(
    name: string,
    param: K,
    value: StreamConfig[K] | null,
    options: TxOption = {},
  ): Promise<void> {
    await this.q(
      `SELECT @s@.set_queue_config($1, $2, $3)`,
      [name, param, value === null ? null : String(value)],
      options.tx,
    );
  }

  // Producing ----------------------------------------------------------------

  /**
   * Publishes one event (JSON payload); returns its id. Visible once the
   * transaction commits and a tick follows. Runs a prepared INSERT that does
   * what `send()` does (src/stream/statements.ts), else `send()` itself.
   */
  async send(stream: string, payload: unknown, options: StreamSendOptions = {}): Promise<number> {
    const data = payload === null ? null : toJsonText('payload', payload);
    const name = checkStreamName(stream);
    const type = eventType(options.type);
    const exec = options.tx ?? this.driver;
    // A PRODUCER span; the event carries no trace context (see docs/operations.md).
    return traceSend(
      name,
      null,
      async () => {
        try {
          const id = await this.statements.send(exec, name, type, data);
          if (id !== null) return id;
        } catch (err) {
          throw mapStreamError(err);
        }
        const rows = await this.q<{ id: string }>(
          `SELECT @s@.send($1, $2, $3::jsonb) AS id`,
          [name, type, data],
          options.tx,
          true,
        );
        return Number(rows[0]!.id);
      },
      (id) => id,
    );
  }

  /** Publishes several events of one type in one statement; ids line up with `payloads`. */
  async sendBatch(
    stream: string,
    payloads: readonly unknown[],
    options: StreamSendOptions = {},
  ): Promise<number[]> {
    if (!Array.isArray(payloads)) throw new InvalidArgumentError('payloads must be an array');
    const data = payloads.map((p, i) => (p === null ? null : toJsonText(`payloads[${i}]`, p)));
    const name = checkStreamName(stream);
    const type = eventType(options.type);
    const exec = options.tx ?? this.driver;
    return traceSend(
      name,
      null,
      async () => {
        try {
          const ids = await this.statements.sendBatch(exec, name, type, data);
          if (ids !== null) return ids;
        } catch (err) {
          throw mapStreamError(err);
        }
        const rows = await this.q<{ ids: string[] }>(
          `SELECT @s@.send_batch($1, $2, $3::jsonb[]) AS ids`,
          [name, type, data],
          options.tx,
          true,
        );
        return rows[0]!.ids.map(Number);
      },
      (ids) => ids.join(','),
    );
  }

  // Consuming (low level) ----------------------------------------------------------

  async subscribe(stream: string, consumer: string, options: TxOption = {}): Promise<boolean> {
    const rows = await this.q<{ r: number }>(
      `SELECT @s@.subscribe($1, $2) AS r`,
      [checkStreamName(stream), checkConsumerName('consumer name', consumer)],
      options.tx,
    );
    return rows[0]!.r === 1;
  }

  async unsubscribe(stream: string, consumer: string, options: TxOption = {}): Promise<boolean> {
    const rows = await this.q<{ r: number }>(
      `SELECT @s@.unsubscribe($1, $2) AS r`,
      [stream, consumer],
      options.tx,
    );
    return rows[0]!.r === 1;
  }

  /** The consumer's current batch (opening the next one if none is active); [] when nothing is ready. */
  async receive<T = unknown>(
    stream: string,
    consumer: string,
    options: ReceiveOptions = {},
  ): Promise<StreamMessage<T>[]> {
    const max = checkPositiveInt('maxMessages', options.maxMessages ?? 100);
    const rows = await traceReceive(stream, () =>
      this.q<MessageRow>(
        `SELECT * FROM @s@.receive($1, $2, $3)`,
        [stream, consumer, max],
        options.tx,
        true,
      ),
    );
    return rows.map((r) => toMessage<T>(r));
  }

  /** Finishes a batch: true, or false when it was unknown or already finished (stale). */
  async ack(batchId: number, options: TxOption = {}): Promise<boolean> {
    const rows = await this.q<{ r: number }>(
      `SELECT @s@.ack($1) AS r`,
      [batchId],
      options.tx,
      true,
    );
    return rows[0]!.r === 1;
  }

  /** Schedules one event of an active batch for redelivery, or dead-letters it at max_retries. */
  async nack(
    batchId: number,
    msg: StreamMessage<unknown>,
    options: NackOptions = {},
  ): Promise<void> {
    const retry = checkNonNegative('retryAfterSeconds', options.retryAfterSeconds ?? 60);
    await this.q(
      `SELECT @s@.nack($1, ROW($2, $3, $4, $5, $6, $7, $8, $9, $10, $11)::@s@.message, make_interval(secs => $12), $13)`,
      [batchId, ...messageParams(msg), retry, options.reason ?? null],
      options.tx,
      true,
    );
  }

  // Cooperative consumers -----------------------------------------------------------

  async subscribeSubconsumer(
    stream: string,
    consumer: string,
    subconsumer: string,
    options: TxOption & { convertNormal?: boolean } = {},
  ): Promise<boolean> {
    const rows = await this.q<{ r: number }>(
      `SELECT @s@.subscribe_subconsumer($1, $2, $3, $4) AS r`,
      [stream, consumer, subconsumer, options.convertNormal ?? false],
      options.tx,
    );
    return rows[0]!.r === 1;
  }

  /** `batchHandling: 1` nacks the member's active batch for the group before leaving. */
  async unsubscribeSubconsumer(
    stream: string,
    consumer: string,
    subconsumer: string,
    options: TxOption & { batchHandling?: 0 | 1 } = {},
  ): Promise<boolean> {
    const rows = await this.q<{ r: number }>(
      `SELECT @s@.unsubscribe_subconsumer($1, $2, $3, $4) AS r`,
      [stream, consumer, subconsumer, options.batchHandling ?? 0],
      options.tx,
    );
    return rows[0]!.r === 1;
  }

  async receiveCoop<T = unknown>(
    stream: string,
    consumer: string,
    subconsumer: string,
    options: ReceiveCoopOptions = {},
  ): Promise<StreamMessage<T>[]> {
    const max = checkPositiveInt('maxMessages', options.maxMessages ?? 100);
    const dead =
      options.deadIntervalSeconds === undefined
        ? null
        : checkNonNegative('deadIntervalSeconds', options.deadIntervalSeconds);
    const rows = await this.q<MessageRow>(
      `SELECT * FROM @s@.receive_coop($1, $2, $3, $4, make_interval(secs => $5))`,
      [stream, consumer, subconsumer, max, dead],
      options.tx,
      true,
    );
    return rows.map((r) => toMessage<T>(r));
  }

  /** Heartbeat of a cooperative member: true if it exists. */
  async touchSubconsumer(
    stream: string,
    consumer: string,
    subconsumer: string,
    options: TxOption = {},
  ): Promise<boolean> {
    const rows = await this.q<{ r: number }>(
      `SELECT @s@.touch_subconsumer($1, $2, $3) AS r`,
      [stream, consumer, subconsumer],
      options.tx,
      true,
    );
    return rows[0]!.r === 1;
  }

  // Ticking and maintenance (pgque_admin) -------------------------------------------

  /** `ticker(stream)`: the new tick id, or null when none was due. Without a stream: ticks every due stream, returns the count. */
  async tick(stream?: string, options: TxOption = {}): Promise<number | null> {
    const rows =
      stream === undefined
        ? await this.q<{ r: string | null }>(`SELECT @s@.ticker() AS r`, [], options.tx)
        : await this.q<{ r: string | null }>(`SELECT @s@.ticker($1) AS r`, [stream], options.tx);
    return rows[0]!.r === null ? null : Number(rows[0]!.r);
  }

  /** Makes the next tick of the stream due regardless of thresholds. */
  async forceNextTick(stream: string, options: TxOption = {}): Promise<void> {
    await this.q(`SELECT @s@.force_next_tick($1)`, [stream], options.tx);
  }

  /** Moves every due retry back into its stream; returns how many. */
  async maintRetryEvents(options: TxOption = {}): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await this.q<{ r: number }>(
        `SELECT @s@.maint_retry_events() AS r`,
        [],
        options.tx,
      );
      total += rows[0]!.r;
      if (rows[0]!.r === 0) return total;
    }
  }

  /** Table rotation (TRUNCATE of fully consumed event tables) and tick cleanup. */
  async maint(options: TxOption = {}): Promise<number> {
    const rows = await this.q<{ r: number }>(`SELECT @s@.maint() AS r`, [], options.tx);
    return rows[0]!.r;
  }

  // Dead letters ----------------------------------------------------------------

  async dlqInspect(
    stream: string,
    options: TxOption & { limit?: number } = {},
  ): Promise<DeadLetter[]> {
    const rows = await this.q<Record<string, unknown>>(
      `SELECT * FROM @s@.dlq_inspect($1, $2)`,
      [stream, options.limit ?? 100],
      options.tx,
    );
    return rows.map((r) => toDeadLetter(stream, r));
  }

  /** Puts a dead letter back: re-sends it as a new event (`dlq_replay`); returns the new event id. */
  async requeueDeadLetter(dlId: number, options: TxOption = {}): Promise<number> {
    const rows = await this.q<{ r: string }>(`SELECT @s@.dlq_replay($1) AS r`, [dlId], options.tx);
    return Number(rows[0]!.r);
  }

  /** @deprecated Use {@link StreamClient.requeueDeadLetter} (the one put-back verb); kept one release. */
  dlqReplay(dlId: number, options: TxOption = {}): Promise<number> {
    return this.requeueDeadLetter(dlId, options);
  }

  /** @deprecated Use {@link StreamClient.requeueDeadLetters}; kept one release. */
  dlqReplayAll(
    stream: string,
    options: TxOption = {},
  ): Promise<{ replayed: number; failed: number; firstError: string | null }> {
    return this.requeueDeadLetters(stream, options);
  }

  /** Puts every dead letter of the stream back (`dlq_replay_all`). */
  async requeueDeadLetters(
    stream: string,
    options: TxOption = {},
  ): Promise<{ replayed: number; failed: number; firstError: string | null }> {
    const rows = await this.q<{ replayed: string; failed: string; first_error: string | null }>(
      `SELECT * FROM @s@.dlq_replay_all($1)`,
      [stream],
      options.tx,
    );
    const r = rows[0]!;
    return { replayed: Number(r.replayed), failed: Number(r.failed), firstError: r.first_error };
  }

  async dlqPurge(
    stream: string,
    options: TxOption & { olderThanSeconds?: number } = {},
  ): Promise<number> {
    const rows = await this.q<{ r: number }>(
      `SELECT @s@.dlq_purge($1, make_interval(secs => $2)) AS r`,
      [stream, checkNonNegative('olderThanSeconds', options.olderThanSeconds ?? 30 * 86400)],
      options.tx,
    );
    return rows[0]!.r;
  }

  // Status -------------------------------------------------------------------------

  async streamInfo(stream?: string, options: TxOption = {}): Promise<StreamInfo[]> {
    const rows = await this.q<Record<string, unknown>>(
      `SELECT *, extract(epoch FROM ticker_lag)::float8 AS ticker_lag_s FROM @s@.get_queue_info($1::text)`,
      [stream ?? null],
      options.tx,
    );
    return rows.map(toStreamInfo);
  }

  async consumerInfo(
    stream?: string,
    consumer?: string,
    options: TxOption = {},
  ): Promise<ConsumerInfo[]> {
    const rows = await this.q<Record<string, unknown>>(
      `SELECT *, extract(epoch FROM lag)::float8 AS lag_s, extract(epoch FROM last_seen)::float8 AS last_seen_s
         FROM @s@.get_consumer_info($1::text, $2::text)`,
      [stream ?? null, consumer ?? null],
      options.tx,
    );
    return rows.map(toConsumerInfo);
  }

  async close(): Promise<void> {
    if (this.ownsDriver) await this.driver.close();
  }
}

/** The event type sent with a payload: `default` when not given; NUL refused like in payloads. */
function eventType(type: string | null | undefined): string | null {
  if (type === undefined) return 'default';
  return typeof type === 'string' ? checkNoNul('type', type) : type;
}
