import type { Executor } from '../../driver/types.js';
import { MESSAGE_COLUMNS, type MessageRow } from '../rows.js';
import { lockGuardWhere, withLockParam } from '../lock-timeout.js';
import { run } from './calls.js';
import type { MessageStatements } from './messages.js';
import type { TableResolver } from './tables.js';
import { vtParams, vtSql, type VtSpec } from './vt.js';

/** The held-only condition: the row is the message and the read with `readCount` still holds it. */
const HELD = 'msg_id = $1::bigint AND read_ct = $2::integer';

/**
 * Stale-read protection: finishing operations that succeed only for the
 * current holder of a read. The receipt is the `read_ct` the read returned
 * (every read increments it), so after a visibility timeout ran out and
 * another consumer read the message again, the old receipt no longer
 * matches and nothing happens. Each statement mirrors the SQL function of
 * the same name in sql/queue/0002_fifo_topics_notify.sql (`delete_if_held`,
 * `archive_if_held`, `set_vt_if_held`, `next_visible_at`); they run as
 * prepared statements against the queue table because a consumer calls them
 * once per message (see messages.ts for the measured reason).
 */
export class HeldStatements {
  constructor(
    private readonly tables: TableResolver,
    private readonly messages: MessageStatements,
    /** lock_timeout for the finishing statements (see lock-timeout.ts); 0 = the server's. */
    private readonly lockTimeoutMs = 0,
  ) {}

  /** Deletes (or archives) the message if the read with `readCount` still holds it. */
  async finish(
    exec: Executor,
    how: 'delete' | 'archive',
    queue: string,
    msgId: number,
    readCount: number,
    locked?: string,
  ): Promise<boolean> {
    const done = await this.messages.finishWhere(
      exec,
      queue,
      how,
      HELD,
      [msgId, readCount],
      locked,
    );
    return done.length > 0;
  }

  /** Sets vt (seconds from the clock, or a time); null when the read is no longer held. */
  async setVt(
    exec: Executor,
    queue: string,
    msgId: number,
    readCount: number,
    vt: VtSpec,
    locked?: string,
  ): Promise<MessageRow | null> {
    const t = await this.tables.table(exec, queue, 'q');
    const params = vtParams([msgId, readCount], vt);
    const rows = await run<MessageRow>(
      exec,
      `UPDATE ${t} SET vt = ${vtSql(vt, 3)} WHERE ${HELD}${lockGuardWhere(this.lockTimeoutMs, params.length + 1)} RETURNING ${MESSAGE_COLUMNS}`,
      withLockParam(this.lockTimeoutMs, params),
      { prepare: true, locked },
    );
    return rows[0] ?? null;
  }

  /**
   * Milliseconds until the earliest future vt of the queue (a delayed message,
   * or one in flight becoming visible again), measured on the database clock;
   * null when there is none.
   */
  async msUntilNextVisible(exec: Executor, queue: string): Promise<number | null> {
    const t = await this.tables.table(exec, queue, 'q');
    const rows = await run<{ ms: number | string | null }>(
      exec,
      `SELECT ceil(extract(epoch FROM (vt - clock_timestamp())) * 1000)::float8 AS ms
         FROM ${t} WHERE vt > clock_timestamp() ORDER BY vt LIMIT 1`,
      [],
      { prepare: true },
    );
    const row = rows[0];
    return row?.ms == null ? null : Math.max(0, Number(row.ms));
  }
}
