import { execute, type Executor } from '../driver/types.js';
import { quoteIdent } from '../driver/quote.js';
import { MESSAGE_COLUMNS, type MessageRow } from './rows.js';
import { lockGuardWhere, withLockParam } from './lock-timeout.js';

/**
 * Hot-path statements run straight against a queue's tables as prepared
 * statements, instead of through the PL/pgSQL functions. Each one does
 * exactly what the SQL function of the same name does (see
 * sql/queue/0001_core.sql); keep them in step. Why: a PL/pgSQL call with
 * EXECUTE plans its dynamic statement on every call, which is what holds the
 * pgmq extension's `send` to ~0.55x of a plain INSERT on this hardware; a
 * prepared statement is planned once per connection.
 */
const tableKey = (queue: string, prefix: 'q' | 'a'): string => prefix + ':' + queue;

export class QueueStatements {
  private readonly tables = new Map<string, string>();

  constructor(
    private readonly schema: string,
    /** lock_timeout for delete and archive (see lock-timeout.ts); 0 = the server's. */
    private readonly lockTimeoutMs = 0,
  ) {}

  /** The table already resolved for `queue`, if any (the hot paths skip an await with it). */
  private cached(queue: string, prefix: 'q' | 'a' = 'q'): string | undefined {
    return this.tables.get(tableKey(queue, prefix));
  }

  /** The quoted queue/archive table of `queue`, resolved once by the SQL's own naming rule. */
  async table(exec: Executor, queue: string, prefix: 'q' | 'a' = 'q'): Promise<string> {
    let t = this.cached(queue, prefix);
    if (!t) {
      const res = await execute<{ t: string }>(
        exec,
        `SELECT ${quoteIdent(this.schema)}.format_table_name($1, $2) AS t`,
        [queue, prefix],
        { prepare: true },
      );
      t = `${quoteIdent(this.schema)}.${quoteIdent(res.rows[0]!.t)}`;
      if (this.tables.size > 10000) this.tables.clear();
      this.tables.set(tableKey(queue, prefix), t);
    }
    return t;
  }

  async send(
    exec: Executor,
    queue: string,
    message: string,
    headers: string | null,
    vt: VtSpec,
  ): Promise<number> {
    const t = this.cached(queue) ?? (await this.table(exec, queue));
    const res = await execute<{ msg_id: string }>(
      exec,
      `INSERT INTO ${t} (vt, message, headers) VALUES (${vtSql(vt, 3)}, $1::jsonb, $2::jsonb) RETURNING msg_id`,
      vtParams([message, headers], vt),
      { prepare: true },
    );
    return Number(res.rows[0]!.msg_id);
  }

  async sendBatch(
    exec: Executor,
    queue: string,
    messages: string[],
    headers: (string | null)[] | null,
    vt: VtSpec,
  ): Promise<number[]> {
    const t = this.cached(queue) ?? (await this.table(exec, queue));
    // The vt is computed once for the whole batch (an InitPlan), as
    // _send_batch does. Unlike _send_batch there is no ORDER BY here: a scan
    // of unnest() yields the array in order and identity values are drawn
    // in that order, so the ids already follow the array; the explicit
    // sorts cost ~25 % of a 100-row batch (measured), so the ids are sorted
    // in JavaScript instead.
    const res = await execute<{ msg_id: string }>(
      exec,
      `INSERT INTO ${t} (vt, message, headers)
       SELECT (SELECT ${vtSql(vt, 3)}), m.msg, m.hdr
         FROM unnest($1::jsonb[], $2::jsonb[]) AS m(msg, hdr)
       RETURNING msg_id`,
      vtParams([messages, headers], vt),
      { prepare: true },
    );
    return res.rows.map((r) => Number(r.msg_id)).sort((a, b) => a - b);
  }

  async delete(exec: Executor, queue: string, ids: number[]): Promise<number[]> {
    const t = this.cached(queue) ?? (await this.table(exec, queue));
    const res = await execute<{ msg_id: string }>(
      exec,
      `DELETE FROM ${t} WHERE msg_id = ANY($1::bigint[])${lockGuardWhere(this.lockTimeoutMs, 2)} RETURNING msg_id`,
      withLockParam(this.lockTimeoutMs, [ids]),
      { prepare: true },
    );
    return res.rows.map((r) => Number(r.msg_id));
  }

  async archive(exec: Executor, queue: string, ids: number[]): Promise<number[]> {
    const q = this.cached(queue) ?? (await this.table(exec, queue));
    const a = this.cached(queue, 'a') ?? (await this.table(exec, queue, 'a'));
    const res = await execute<{ msg_id: string }>(
      exec,
      `WITH moved AS (
         DELETE FROM ${q} WHERE msg_id = ANY($1::bigint[])${lockGuardWhere(this.lockTimeoutMs, 2)}
         RETURNING msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
       INSERT INTO ${a} (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
       SELECT msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers FROM moved
       RETURNING msg_id`,
      withLockParam(this.lockTimeoutMs, [ids]),
      { prepare: true },
    );
    return res.rows.map((r) => Number(r.msg_id));
  }

  /** Mirrors `read_locked`: visible messages locked FOR UPDATE SKIP LOCKED, not updated. */
  async readLocked(
    exec: Executor,
    queue: string,
    qty: number,
    conditional: string,
  ): Promise<MessageRow[]> {
    const t = this.cached(queue) ?? (await this.table(exec, queue));
    const res = await execute<MessageRow>(
      exec,
      `SELECT ${MESSAGE_COLUMNS} FROM ${t}
        WHERE vt <= clock_timestamp() AND ($2::jsonb = '{}'::jsonb OR message @> $2::jsonb)
        ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [qty, conditional],
      { prepare: true },
    );
    return res.rows;
  }

  /** Forget cached table names (after a drop). */
  forget(queue: string): void {
    this.tables.delete(tableKey(queue, 'q'));
    this.tables.delete(tableKey(queue, 'a'));
  }
}

/** A visibility time: seconds from the clock, or an absolute time. */
export type VtSpec = { kind: 'seconds'; value: number } | { kind: 'at'; value: Date };

/** No delay is the common case: plain clock_timestamp(), one parameter fewer. */
const isNow = (vt: VtSpec): boolean => vt.kind === 'seconds' && vt.value === 0;

function vtSql(vt: VtSpec, param: number): string {
  if (isNow(vt)) return 'clock_timestamp()';
  return vt.kind === 'seconds'
    ? `clock_timestamp() + make_interval(secs => $${param}::integer)`
    : `$${param}::timestamptz`;
}

function vtParams(params: unknown[], vt: VtSpec): unknown[] {
  return isNow(vt) ? params : [...params, vt.value];
}
