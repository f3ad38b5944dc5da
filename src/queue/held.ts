import { execute, type Executor } from '../driver/types.js';
import { quoteIdent } from '../driver/quote.js';
import { MESSAGE_COLUMNS, toMessage, type MessageRow } from './rows.js';
import { lockGuardWhere, withLockParam } from './lock-timeout.js';
import type { Message } from './types.js';

/**
 * Stale-read protection: finishing operations that succeed only for the
 * current holder of a read. The receipt is the `read_ct` the read returned
 * (every read increments it), so after a visibility timeout ran out and
 * another consumer read the message again, the old receipt no longer
 * matches and nothing happens. Each statement mirrors the SQL function of
 * the same name in sql/queue/0002_fifo_topics_notify.sql (`delete_if_held`,
 * `archive_if_held`, `set_vt_if_held`, `next_visible_at`); they run as
 * prepared statements against the queue table because a consumer calls them
 * once per message (see statements.ts for the measured reason).
 */
export class HeldStatements {
  private readonly tables = new Map<string, string>();
  private readonly s: string;

  constructor(
    schema: string,
    /** lock_timeout for the finishing statements (see lock-timeout.ts); 0 = the server's. */
    private readonly lockTimeoutMs = 0,
  ) {
    this.s = quoteIdent(schema);
  }

  private async table(exec: Executor, queue: string, prefix: 'q' | 'a'): Promise<string> {
    const key = prefix + ':' + queue;
    let t = this.tables.get(key);
    if (!t) {
      const res = await execute<{ t: string }>(
        exec,
        `SELECT ${this.s}.format_table_name($1, $2) AS t`,
        [queue, prefix],
        {
          prepare: true,
        },
      );
      t = `${this.s}.${quoteIdent(res.rows[0]!.t)}`;
      if (this.tables.size > 10000) this.tables.clear();
      this.tables.set(key, t);
    }
    return t;
  }

  private guard(n: number): string {
    return lockGuardWhere(this.lockTimeoutMs, n);
  }

  async delete(exec: Executor, queue: string, msgId: number, readCount: number): Promise<boolean> {
    const t = await this.table(exec, queue, 'q');
    // RETURNING rather than rowCount: a caller's foreign client may not report it.
    const res = await execute<{ msg_id: string }>(
      exec,
      `DELETE FROM ${t} WHERE msg_id = $1::bigint AND read_ct = $2::integer${this.guard(3)} RETURNING msg_id`,
      withLockParam(this.lockTimeoutMs, [msgId, readCount]),
      { prepare: true },
    );
    return res.rows.length > 0;
  }

  async archive(exec: Executor, queue: string, msgId: number, readCount: number): Promise<boolean> {
    const q = await this.table(exec, queue, 'q');
    const a = await this.table(exec, queue, 'a');
    const res = await execute<{ msg_id: string }>(
      exec,
      `WITH moved AS (
         DELETE FROM ${q} WHERE msg_id = $1::bigint AND read_ct = $2::integer${this.guard(3)}
         RETURNING msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
       INSERT INTO ${a} (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
       SELECT msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers FROM moved
       RETURNING msg_id`,
      withLockParam(this.lockTimeoutMs, [msgId, readCount]),
      { prepare: true },
    );
    return res.rows.length > 0;
  }

  /** Sets vt (seconds from the clock, or a Date); null when the read is no longer held. */
  async setVt<T>(
    exec: Executor,
    queue: string,
    msgId: number,
    readCount: number,
    vt: number | Date,
  ): Promise<Message<T> | null> {
    const t = await this.table(exec, queue, 'q');
    const vtSql =
      vt instanceof Date
        ? '$3::timestamptz'
        : 'clock_timestamp() + make_interval(secs => $3::integer)';
    const res = await execute<MessageRow>(
      exec,
      `UPDATE ${t} SET vt = ${vtSql} WHERE msg_id = $1::bigint AND read_ct = $2::integer${this.guard(4)} RETURNING ${MESSAGE_COLUMNS}`,
      withLockParam(this.lockTimeoutMs, [msgId, readCount, vt]),
      { prepare: true },
    );
    const row = res.rows[0];
    return row ? toMessage<T>(row) : null;
  }

  /**
   * Milliseconds until the earliest future vt of the queue (a delayed message,
   * or one in flight becoming visible again), measured on the database clock;
   * null when there is none.
   */
  async msUntilNextVisible(exec: Executor, queue: string): Promise<number | null> {
    const t = await this.table(exec, queue, 'q');
    const res = await execute<{ ms: number | string | null }>(
      exec,
      `SELECT ceil(extract(epoch FROM (vt - clock_timestamp())) * 1000)::float8 AS ms
         FROM ${t} WHERE vt > clock_timestamp() ORDER BY vt LIMIT 1`,
      [],
      { prepare: true },
    );
    const row = res.rows[0];
    return row?.ms == null ? null : Math.max(0, Number(row.ms));
  }

  forget(queue: string): void {
    this.tables.delete('q:' + queue);
    this.tables.delete('a:' + queue);
  }
}
