import { execute, type Executor } from '../driver/types.js';
import { quoteIdent, quoteLiteral } from '../driver/quote.js';

/**
 * The producing hot path as prepared statements, straight against a stream's
 * current event table, instead of through PgQue's PL/pgSQL functions
 * (`insert_event` / `_send_batch_rows`, sql/stream/0002_queues_produce_tick.sql),
 * which plan a dynamic INSERT on every call. The SQL functions stay the
 * contract: each statement here does what they do — the queue row is read
 * in the statement's snapshot, ids come from the stream's sequence in input
 * order, `ev_time = now()`, the payload is stored as `jsonb::text`, and
 * `ev_extra4` is the caller's (the trace context, else NULL: what `insert_event`
 * writes), `pg_notify('pgferry.<schema>.tick_request', <stream>)` is sent when a
 * consumer waits — but only in the plain case. Whenever the statement
 * inserts nothing (unknown stream, inserts disabled, the current table
 * rotated since it was resolved) the caller runs the SQL function, which
 * inserts or raises its own error; and a role that may not write the event
 * tables directly (a `<stream>_writer`, which only has EXECUTE) always uses
 * the SQL functions. test/stream/send-parity.test.ts compares both paths.
 */
interface Target {
  /** Single send; null when this role must use the SQL function. */
  one: string | null;
  batch: string | null;
  /** The same with ev_extra4 as parameter $4 (a trace context); without it the column stays NULL. */
  oneExtra4: string | null;
  batchExtra4: string | null;
}

export class StreamStatements {
  private readonly targets = new Map<string, Target>();
  private readonly s: string;

  constructor(private readonly schema: string) {
    this.s = quoteIdent(schema);
  }

  /** Forgets what was resolved for `stream` (after a fallback: rotated, dropped, disabled). */
  forget(stream: string): void {
    this.targets.delete(stream);
  }

  private async resolve(exec: Executor, stream: string): Promise<Target> {
    const none: Target = { one: null, batch: null, oneExtra4: null, batchExtra4: null };
    // Privileges first, without touching a table this role may not read (a
    // failed statement would abort the caller's transaction).
    const s = this.s;
    const priv = await execute<{ ok: boolean }>(
      exec,
      `SELECT has_table_privilege($1, 'SELECT') AND has_table_privilege($2, 'SELECT') AS ok`,
      [`${s}.queue`, `${s}._waiter`],
      { prepare: true },
    );
    let t = none;
    if (priv.rows[0]!.ok) {
      const res = await execute<{ id: number; cur: number; ok: boolean }>(
        exec,
        `SELECT q.queue_id AS id, q.queue_cur_table AS cur,
                has_table_privilege(format('%I.%I', $2::text, 'event_' || q.queue_id || '_' || q.queue_cur_table), 'INSERT')
                AND has_sequence_privilege(format('%I.%I', $2::text, 'event_' || q.queue_id || '_id_seq'), 'USAGE') AS ok
           FROM ${s}.queue q WHERE q.queue_name = $1`,
        [stream, this.schema],
        { prepare: true },
      );
      const row = res.rows[0];
      if (row?.ok) t = this.build(Number(row.id), Number(row.cur));
      else if (!row) return none; // unknown stream: not cached, the function raises
    }
    if (this.targets.size > 10000) this.targets.clear();
    this.targets.set(stream, t);
    return t;
  }

  private build(id: number, cur: number): Target {
    const s = this.s;
    const table = `${s}.${quoteIdent(`event_${id}_${cur}`)}`;
    const seq = quoteLiteral(`${s}.${quoteIdent(`event_${id}_id_seq`)}`);
    const channel = quoteLiteral(`pgferry.${this.schema}.tick_request`);
    // The queue row as _producer_queue reads it, and only if the table is
    // still the current one and inserts are allowed.
    const current = `x.queue_name = $1 AND x.queue_id = ${id} AND x.queue_cur_table = ${cur}
                     AND NOT x.queue_disable_insert`;
    const waiting = `EXISTS (SELECT 1 FROM ${s}._waiter w WHERE w.queue_id = ${id} AND w.until > now())`;
    const one = (extra4: boolean): string =>
      // One INSERT … SELECT; the wake-up is in RETURNING, so it runs once,
      // after the row is in, and not at all when nothing was inserted. The
      // NOTIFY payload is the queue name ($1, which the row matched). `woke`
      // is true when it was sent, else null. Written as three CTEs (queue
      // row, insert, wake-up) the same statement cost twice the server time.
      `INSERT INTO ${table} (ev_id, ev_time, ev_type, ev_data${extra4 ? ', ev_extra4' : ''})
        SELECT nextval(${seq}::regclass), now(), $2, $3::jsonb::text${extra4 ? ', $4::text' : ''} FROM ${s}.queue x WHERE ${current}
        RETURNING ev_id AS id, CASE WHEN ${waiting} THEN pg_notify(${channel}, $1) IS NOT NULL END AS woke`;
    const batch = (extra4: boolean): string =>
      // Ids drawn in input order, as _send_batch_rows draws them before
      // inserting: a scan of unnest() yields the array in order and nextval
      // is evaluated row by row in that order, so the ids ascend with the
      // input and are sorted in TypeScript (sendBatch) rather than by two
      // sorts here (an ORDER BY before nextval and one in array_agg, with the
      // payloads materialised in between: ~10 % of a 100-event batch).
      `WITH q AS (SELECT x.queue_id, x.queue_name FROM ${s}.queue x WHERE ${current}),
        ins AS (INSERT INTO ${table} (ev_id, ev_time, ev_type, ev_data${extra4 ? ', ev_extra4' : ''})
                SELECT nextval(${seq}::regclass), now(), $2, u.d::text${extra4 ? ', $4::text' : ''}
                  FROM q, unnest($3::jsonb[]) AS u(d)
                RETURNING ev_id),
        wake AS (SELECT pg_notify(${channel}, q.queue_name) FROM q WHERE EXISTS (SELECT 1 FROM ins) AND ${waiting})
        SELECT array_agg(ins.ev_id) AS ids, (SELECT count(*) FROM wake) AS woke FROM ins`;
    // Without a trace context ev_extra4 is left to its default (NULL, what
    // insert_event writes then): one parameter fewer on the hot path.
    return { one: one(false), batch: batch(false), oneExtra4: one(true), batchExtra4: batch(true) };
  }

  /** The new event's id, or null: run the SQL function instead. `extra4`: ev_extra4 (the trace context). */
  async send(
    exec: Executor,
    stream: string,
    type: string | null,
    data: string | null,
    extra4: string | null = null,
  ): Promise<number | null> {
    const t = this.targets.get(stream) ?? (await this.resolve(exec, stream));
    if (!t.one) return null;
    const res = await execute<{ id: string }>(
      exec,
      extra4 === null ? t.one : t.oneExtra4!,
      extra4 === null ? [stream, type, data] : [stream, type, data, extra4],
      { prepare: true },
    );
    if (!res.rows[0]) {
      this.forget(stream);
      return null;
    }
    return Number(res.rows[0].id);
  }

  /** The new events' ids in input order, or null: run the SQL function instead. */
  async sendBatch(
    exec: Executor,
    stream: string,
    type: string | null,
    data: (string | null)[],
    extra4: string | null = null,
  ): Promise<number[] | null> {
    if (data.length === 0) return null; // the function's own early return
    const t = this.targets.get(stream) ?? (await this.resolve(exec, stream));
    if (!t.batch) return null;
    const res = await execute<{ ids: string[] | null }>(
      exec,
      extra4 === null ? t.batch : t.batchExtra4!,
      extra4 === null ? [stream, type, data] : [stream, type, data, extra4],
      { prepare: true },
    );
    const ids = res.rows[0]?.ids;
    if (!ids) {
      this.forget(stream);
      return null;
    }
    return ids.map(Number).sort((a, b) => a - b);
  }
}
