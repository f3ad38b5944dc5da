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
    const none: Target = { one: null, batch: null };
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
    return {
      // One INSERT … SELECT; the wake-up is in RETURNING, so it runs once,
      // after the row is in, and not at all when nothing was inserted. The
      // NOTIFY payload is the queue name ($1, which the row matched). `woke`
      // is true when it was sent, else null. Written as three CTEs (queue
      // row, insert, wake-up) the same statement cost twice the server time.
      one: `INSERT INTO ${table} (ev_id, ev_time, ev_type, ev_data, ev_extra4)
        SELECT nextval(${seq}::regclass), now(), $2, $3::jsonb::text, $4::text FROM ${s}.queue x WHERE ${current}
        RETURNING ev_id AS id, CASE WHEN ${waiting} THEN pg_notify(${channel}, $1) IS NOT NULL END AS woke`,
      // Ids drawn in input order (nextval is evaluated after the sort), as
      // _send_batch_rows draws them before inserting.
      batch: `WITH q AS (SELECT x.queue_id, x.queue_name FROM ${s}.queue x WHERE ${current}),
        ids AS MATERIALIZED (SELECT nextval(${seq}::regclass) AS id, u.d, u.i
                               FROM q, unnest($3::jsonb[]) WITH ORDINALITY AS u(d, i) ORDER BY u.i),
        ins AS (INSERT INTO ${table} (ev_id, ev_time, ev_type, ev_data, ev_extra4)
                SELECT id, now(), $2, d::text, $4::text FROM ids RETURNING 1),
        wake AS (SELECT pg_notify(${channel}, q.queue_name) FROM q WHERE EXISTS (SELECT 1 FROM ins) AND ${waiting})
        SELECT array_agg(ids.id ORDER BY ids.i) AS ids, (SELECT count(*) FROM wake) AS woke FROM ids`,
    };
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
    const res = await execute<{ id: string }>(exec, t.one, [stream, type, data, extra4], {
      prepare: true,
    });
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
      t.batch,
      [stream, type, data, extra4],
      {
        prepare: true,
      },
    );
    const ids = res.rows[0]?.ids;
    if (!ids) {
      this.forget(stream);
      return null;
    }
    return ids.map(Number);
  }
}
