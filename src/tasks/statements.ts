import { execute, type Executor } from '../driver/types.js';
import { quoteIdent } from '../driver/quote.js';
import { DatabaseError } from '../errors.js';
import { MESSAGE_COLUMNS, type MessageRow } from '../queue/rows.js';
import { H } from './headers.js';

/** When a job becomes visible: at a time, or after a delay from the database clock. */
export interface RunAt {
  at: Date | null;
  delayMs: number;
}

/**
 * The tasks engine's statements. Enqueue runs as prepared INSERTs straight
 * into the task's queue table, doing exactly what the SQL function
 * `<tasks>.enqueue` does (keep them in step): a PL/pgSQL call plans its
 * dynamic statement on every call, which costs ~45 % of single-row insert
 * throughput in our measurements. Everything else calls the SQL functions
 * in sql/tasks/0001_core.sql, which do one batch of work per call.
 */
export class TaskStatements {
  private readonly tables = new Map<string, string>();
  readonly q: string;
  readonly t: string;

  constructor(
    readonly queueSchema: string,
    readonly tasksSchema: string,
  ) {
    this.q = quoteIdent(queueSchema);
    this.t = quoteIdent(tasksSchema);
  }

  async table(exec: Executor, queue: string, prefix: 'q' | 'a' = 'q'): Promise<string> {
    const key = prefix + ':' + queue;
    let t = this.tables.get(key);
    if (!t) {
      const res = await execute<{ t: string }>(
        exec,
        `SELECT ${this.q}.format_table_name($1, $2) AS t`,
        [queue, prefix],
        {
          prepare: true,
        },
      );
      t = `${this.q}.${quoteIdent(res.rows[0]!.t)}`;
      this.tables.set(key, t);
    }
    return t;
  }

  ensureTask(
    exec: Executor,
    queue: string,
    grouped: boolean,
    byPriority: boolean,
  ): Promise<unknown> {
    return execute(exec, `SELECT ${this.t}.ensure_task($1::text, $2::boolean, $3::boolean)`, [
      queue,
      grouped,
      byPriority,
    ]);
  }

  async enqueue(
    exec: Executor,
    queue: string,
    body: string,
    headers: string,
    key: string | undefined,
    runAt: RunAt,
  ): Promise<{ id: number; duplicate: boolean }> {
    const t = await this.table(exec, queue);
    for (let i = 0; ; i++) {
      const res = await execute<{ msg_id: string }>(
        exec,
        `INSERT INTO ${t} (vt, message, headers)
         VALUES (COALESCE($3::timestamptz, clock_timestamp() + make_interval(secs => $4::float8 / 1000)), $1::jsonb, $2::jsonb)
         ON CONFLICT DO NOTHING RETURNING msg_id`,
        [body, headers, runAt.at, runAt.delayMs],
        { prepare: true },
      );
      if (res.rows[0]) return { id: Number(res.rows[0].msg_id), duplicate: false };
      if (key === undefined || i > 10)
        throw new DatabaseError(`enqueue into ${queue} inserted nothing`);
      const found = await this.findByKeys(exec, t, [key]);
      const id = found.get(key);
      if (id !== undefined) return { id, duplicate: true };
      // The job holding the key finished in between: insert again.
    }
  }

  async enqueueBatch(
    exec: Executor,
    queue: string,
    bodies: string[],
    headers: string[],
    keys: (string | undefined)[],
    runAts: RunAt[],
  ): Promise<{ id: number; duplicate: boolean }[]> {
    const t = await this.table(exec, queue);
    const res = await execute<{ msg_id: string; k: string | null }>(
      exec,
      `INSERT INTO ${t} (vt, message, headers)
       SELECT COALESCE(m.run_at, clock_timestamp() + make_interval(secs => m.delay_ms / 1000)), m.msg, m.hdr
         FROM unnest($1::jsonb[], $2::jsonb[], $3::timestamptz[], $4::float8[]) WITH ORDINALITY AS m(msg, hdr, run_at, delay_ms, ord)
        ORDER BY m.ord
       ON CONFLICT DO NOTHING
       RETURNING msg_id, headers ->> '${H.idempotencyKey}' AS k`,
      [bodies, headers, runAts.map((r) => r.at), runAts.map((r) => r.delayMs)],
      { prepare: true },
    );
    // Identity values follow the ORDER BY, so unkeyed rows map back in order.
    const rows = res.rows
      .map((r) => ({ id: Number(r.msg_id), k: r.k }))
      .sort((a, b) => a.id - b.id);
    const unkeyed = rows.filter((r) => r.k === null).map((r) => r.id);
    const byKey = new Map(rows.filter((r) => r.k !== null).map((r) => [r.k!, r.id]));
    const out: { id: number; duplicate: boolean }[] = [];
    const seen = new Set<string>();
    const missing: number[] = [];
    keys.forEach((k, i) => {
      if (k === undefined) {
        out.push({ id: unkeyed.shift()!, duplicate: false });
      } else if (byKey.has(k) && !seen.has(k)) {
        seen.add(k);
        out.push({ id: byKey.get(k)!, duplicate: false });
      } else {
        out.push({ id: -1, duplicate: true });
        missing.push(i);
      }
    });
    if (missing.length) {
      const found = await this.findByKeys(exec, t, [...new Set(missing.map((i) => keys[i]!))]);
      for (const i of missing) {
        const k = keys[i]!;
        const id = byKey.get(k) ?? found.get(k);
        out[i] =
          id !== undefined
            ? { id, duplicate: true }
            : await this.enqueue(exec, queue, bodies[i]!, headers[i]!, k, runAts[i]!);
      }
    }
    return out;
  }

  private async findByKeys(
    exec: Executor,
    table: string,
    keys: string[],
  ): Promise<Map<string, number>> {
    const res = await execute<{ msg_id: string; k: string }>(
      exec,
      `SELECT msg_id, headers ->> '${H.idempotencyKey}' AS k FROM ${table}
        WHERE headers ->> '${H.idempotencyKey}' = ANY($1::text[]) AND headers ? '${H.idempotencyKey}'`,
      [keys],
      { prepare: true },
    );
    return new Map(res.rows.map((r) => [r.k, Number(r.msg_id)]));
  }

  async fetch(
    exec: Executor,
    queue: string,
    qty: number,
    leaseMs: number,
    lifo: boolean,
    grouped: boolean,
    byPriority: boolean,
    limit: number | null,
  ): Promise<MessageRow[]> {
    const res = await execute<MessageRow>(
      exec,
      `SELECT ${MESSAGE_COLUMNS} FROM ${this.t}.fetch($1::text, $2::integer, $3::integer, $4::boolean, $5::boolean, $6::boolean, $7::integer)`,
      [queue, qty, leaseMs, lifo, grouped, byPriority, limit],
      { prepare: true },
    );
    return res.rows;
  }

  async complete(
    exec: Executor,
    queue: string,
    ids: number[],
    readCounts: number[],
    archive: boolean,
    asyncCommit = false,
    notify = false,
  ): Promise<number> {
    const res = await execute(
      exec,
      `SELECT ${this.t}.complete($1::text, $2::bigint[], $3::integer[], $4::boolean, $5::boolean, $6::boolean)`,
      [queue, ids, readCounts, archive, asyncCommit, notify],
      { prepare: true },
    );
    return res.rows.length;
  }

  async retry(
    exec: Executor,
    queue: string,
    id: number,
    readCount: number,
    delayMs: number,
    error: string,
  ): Promise<boolean> {
    const res = await execute<{ ok: boolean }>(
      exec,
      `SELECT ${this.t}.retry($1::text, $2::bigint, $3::integer, $4::integer, $5::jsonb) AS ok`,
      [queue, id, readCount, delayMs, error],
      { prepare: true },
    );
    return res.rows[0]!.ok;
  }

  async deadLetter(
    exec: Executor,
    queue: string,
    id: number,
    readCount: number,
    error: string,
  ): Promise<number | null> {
    const res = await execute<{ id: string | null }>(
      exec,
      `SELECT ${this.t}.dead_letter($1::text, $2::bigint, $3::integer, $4::jsonb) AS id`,
      [queue, id, readCount, error],
      { prepare: true },
    );
    const v = res.rows[0]!.id;
    return v === null ? null : Number(v);
  }

  async handBack(
    exec: Executor,
    queue: string,
    ids: number[],
    readCounts: number[],
  ): Promise<number> {
    const res = await execute(
      exec,
      `SELECT ${this.t}.hand_back($1::text, $2::bigint[], $3::integer[])`,
      [queue, ids, readCounts],
    );
    return res.rows.length;
  }

  async extend(
    exec: Executor,
    queue: string,
    ids: number[],
    readCounts: number[],
    leaseMs: number,
  ): Promise<Set<number>> {
    const res = await execute<{ id: string }>(
      exec,
      `SELECT ${this.t}.extend($1::text, $2::bigint[], $3::integer[], $4::integer) AS id`,
      [queue, ids, readCounts, leaseMs],
    );
    return new Set(res.rows.map((r) => Number(r.id)));
  }

  /**
   * Milliseconds until the queue needs a look again (null: only a
   * notification or the poll interval). Measured on the database clock, so
   * a skewed client clock cannot make a worker spin or oversleep.
   */
  async idle(exec: Executor, queue: string): Promise<number | null> {
    const res = await execute<{ ms: number | string | null }>(
      exec,
      `SELECT (extract(epoch FROM ${this.t}.idle($1::text) - clock_timestamp()) * 1000)::float8 AS ms`,
      [queue],
      { prepare: true },
    );
    const ms = res.rows[0]!.ms;
    return ms === null ? null : Math.max(0, Number(ms));
  }

  async cancel(
    exec: Executor,
    queue: string,
    id: number,
  ): Promise<'queued' | 'running' | 'not_found'> {
    const res = await execute<{ r: 'queued' | 'running' | 'not_found' }>(
      exec,
      `SELECT ${this.t}.cancel($1::text, $2::bigint) AS r`,
      [queue, id],
    );
    return res.rows[0]!.r;
  }
}
