import type { Queryable, QueryOptions, QueryResult } from '../driver/types.js';
import { markNative } from '../driver/types.js';
import type { Logger } from '../logger.js';
import { traceProcess } from '../telemetry/tracing.js';
import { eventTraceHeaders } from '../telemetry/stream-tracing.js';
import { NACK_SQL, type StreamClient } from './client.js';
import type { BatchResult, ConsumerSettings } from './consumer-options.js';
import { toSeconds } from './durations.js';
import { StaleBatchError } from './errors.js';
import { messageParams } from './rows.js';
import type { Handler, StreamMessage } from './types.js';

const SAVEPOINT = 'pgferry_stream_handler';

/**
 * A handler's view of the batch transaction: the first statement it runs
 * opens a savepoint, so a handler that fails after writing is rolled back
 * alone and its event nacked, while the rest of the batch commits. Handlers
 * that never touch `tx` cost nothing.
 */
class HandlerTx implements Queryable {
  used = false;
  constructor(private readonly tx: Queryable) {
    markNative(this);
  }
  async query<R = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<R>> {
    if (!this.used) {
      this.used = true;
      await this.tx.query(`SAVEPOINT ${SAVEPOINT}`);
    }
    return this.tx.query<R>(text, params, options);
  }
}

/**
 * Handles one received batch in its transaction: each event to its handler
 * (by type, else `'*'`), a failed or unhandled event nacked, then the ack.
 */
export class BatchHandler<T> {
  constructor(
    private readonly client: StreamClient,
    private readonly settings: ConsumerSettings,
    private readonly handlers: ReadonlyMap<string, Handler<T>>,
    private readonly signal: AbortSignal,
    private readonly logger: Logger,
  ) {}

  async handle(tx: Queryable, messages: StreamMessage<T>[]): Promise<BatchResult> {
    const batchId = messages[0]!.batchId;
    let nacked = 0;
    for (const msg of messages) {
      if (!(await this.dispatch(tx, msg, batchId))) nacked++;
    }
    const ack = await this.client.q<{ r: number }>(`SELECT @s@.ack($1) AS r`, [batchId], tx, true);
    if (ack[0]!.r !== 1) {
      // The batch was finished elsewhere or taken over (cooperative mode):
      // roll back whatever the handlers wrote; the new owner redoes it.
      throw new StaleBatchError(batchId);
    }
    return { batchId, events: messages.length, nacked };
  }

  /** One event: false when it was nacked. */
  private async dispatch(tx: Queryable, msg: StreamMessage<T>, batchId: number): Promise<boolean> {
    const { stream, name } = this.settings;
    const handler =
      (msg.type !== null ? this.handlers.get(msg.type) : undefined) ?? this.handlers.get('*');
    if (!handler) {
      if (this.settings.unknownHandlerPolicy === 'ack') {
        this.logger.warn(
          { stream, type: msg.type, msgId: msg.msgId },
          'pgferry stream consumer: no handler, skipped',
        );
        return true;
      }
      await this.nack(tx, msg, `no handler for event type ${JSON.stringify(msg.type)}`);
      return false;
    }
    const htx = new HandlerTx(tx);
    try {
      const job = {
        id: msg.msgId,
        task: stream,
        consumerGroup: name,
        attempt: (msg.retryCount ?? 0) + 1,
        // The sender's trace context (ev_extra4), so the process span is its child.
        headers: eventTraceHeaders(msg.extra4),
      };
      await traceProcess(job, () => handler(msg, { tx: htx, batchId, signal: this.signal }));
      if (htx.used) await tx.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      return true;
    } catch (err) {
      if (htx.used) await tx.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      this.logger.warn(
        { err, stream, msgId: msg.msgId, type: msg.type },
        'pgferry stream consumer: handler failed, nacked',
      );
      await this.nack(tx, msg, err instanceof Error ? err.message : String(err));
      return false;
    }
  }

  private async nack(tx: Queryable, msg: StreamMessage<T>, reason: string): Promise<void> {
    await this.client.q(
      NACK_SQL,
      [msg.batchId, ...messageParams(msg), toSeconds(this.settings.retryAfterMs), reason],
      tx,
      true,
    );
  }
}
