import { StreamClientBase } from './base.js';
import { durationMs, toSeconds } from './durations.js';
import { toConsumerInfo, toDeadLetter, toStreamInfo } from './rows.js';
import type { ConsumerInfo, DeadLetter, StreamInfo, TxOption } from './types.js';

/** What putting every dead letter of a stream back did. */
export interface RequeueAllResult {
  replayed: number;
  failed: number;
  firstError: string | null;
}

/** Options of {@link StreamClientAdmin.dlqPurge}. */
export interface DlqPurgeOptions extends TxOption {
  /** Purge dead letters older than this. Default 30 days. */
  olderThanMs?: number;
  /** @deprecated Use `olderThanMs`; kept one release (giving both is an InvalidArgumentError). */
  olderThanSeconds?: number;
}

/**
 * StreamClient's operating section: ticking and maintenance (pgque_admin),
 * dead letters, status.
 */
export abstract class StreamClientAdmin extends StreamClientBase {
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
      const n = await this.count(`SELECT @s@.maint_retry_events() AS r`, [], options);
      total += n;
      if (n === 0) return total;
    }
  }

  /** Table rotation (TRUNCATE of fully consumed event tables) and tick cleanup. */
  async maint(options: TxOption = {}): Promise<number> {
    return this.count(`SELECT @s@.maint() AS r`, [], options);
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

  /** @deprecated Use {@link StreamClientAdmin.requeueDeadLetter} (the one put-back verb); kept one release. */
  async dlqReplay(dlId: number, options: TxOption = {}): Promise<number> {
    return this.requeueDeadLetter(dlId, options);
  }

  /** @deprecated Use {@link StreamClientAdmin.requeueDeadLetters}; kept one release. */
  async dlqReplayAll(stream: string, options: TxOption = {}): Promise<RequeueAllResult> {
    return this.requeueDeadLetters(stream, options);
  }

  /** Puts every dead letter of the stream back (`dlq_replay_all`). */
  async requeueDeadLetters(stream: string, options: TxOption = {}): Promise<RequeueAllResult> {
    const rows = await this.q<{ replayed: string; failed: string; first_error: string | null }>(
      `SELECT * FROM @s@.dlq_replay_all($1)`,
      [stream],
      options.tx,
    );
    const r = rows[0]!;
    return { replayed: Number(r.replayed), failed: Number(r.failed), firstError: r.first_error };
  }

  /** Deletes the stream's dead letters older than `olderThanMs` (default 30 days); returns how many. */
  async dlqPurge(stream: string, options: DlqPurgeOptions = {}): Promise<number> {
    const olderThan = durationMs(options, 'olderThanMs', 'olderThanSeconds', 30 * 86_400_000);
    return this.count(
      `SELECT @s@.dlq_purge($1, make_interval(secs => $2)) AS r`,
      [stream, toSeconds(olderThan)],
      options,
    );
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

  /** Runs a statement returning one integer `r`. */
  private async count(
    text: string,
    params: readonly unknown[],
    options: TxOption,
  ): Promise<number> {
    const rows = await this.q<{ r: number }>(text, params, options.tx);
    return rows[0]!.r;
  }
}
