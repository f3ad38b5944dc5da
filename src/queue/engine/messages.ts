import type { Executor } from '../../driver/types.js';
import { EPOCH_MESSAGE_COLUMNS, type EpochMessageRow } from '../rows.js';
import { lockGuardWhere, withLockParam } from '../lock-timeout.js';
import { run, type Locked } from './calls.js';
import { LITERAL_QTY } from './read.js';
import type { TableResolver } from './tables.js';
import { isNow, vtParams, vtSql, type VtSpec } from './vt.js';

/**
 * JSON texts (each valid JSON already) as one JSON array text, for a batch
 * statement to split with `jsonb_array_elements`: no per-element escaping,
 * which the driver does for a jsonb[] parameter (quotes and backslashes
 * doubled for the array literal) and which cost more Node time than the
 * rest of a batch send.
 */
const jsonArray = (xs: readonly string[]): string => '[' + xs.join(',') + ']';

/**
 * Headers for the same: each wrapped in a one-element array, SQL NULL as an
 * empty one, so `-> 0` gives back exactly the header (JSON `null` stays
 * JSON null, a missing header is SQL NULL). No headers at all: NULL, and
 * `ROWS FROM` pads every row's header with NULL.
 */
const headerArray = (hs: readonly (string | null)[] | null): string | null =>
  hs === null ? null : '[' + hs.map((h) => (h === null ? '[]' : '[' + h + ']')).join(',') + ']';

/** The columns an archive row copies from its message row. */
export const MOVED = 'msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers';

/**
 * The archive statement (SQL `archive`, `archive_if_held`): delete the rows
 * matching `where` from the queue table and insert them into the archive,
 * returning their ids. Written once for the batch and the held-only forms.
 */
export function archiveSql(q: string, a: string, where: string): string {
  return `WITH moved AS (DELETE FROM ${q} WHERE ${where} RETURNING ${MOVED})
       INSERT INTO ${a} (${MOVED}) SELECT ${MOVED} FROM moved RETURNING msg_id`;
}

/** The batch finishing condition: the given ids. */
const BY_IDS = 'msg_id = ANY($1::bigint[])';

const ids = (rows: { msg_id: string }[]): number[] => rows.map((r) => Number(r.msg_id));

/**
 * Hot-path statements run straight against a queue's tables as prepared
 * statements, instead of through the PL/pgSQL functions. Each one does
 * exactly what the SQL function of the same name does (see
 * sql/queue/0001_core.sql); test/queue/hot-path-parity.test.ts runs both on
 * the same inputs and compares results and side effects. Why: a PL/pgSQL
 * call with EXECUTE plans its dynamic statement on every call, which is what
 * holds the pgmq extension's `send` to ~0.55x of a plain INSERT on this
 * hardware; a prepared statement is planned once per connection.
 */
export class MessageStatements {
  constructor(
    private readonly tables: TableResolver,
    /** lock_timeout for delete and archive (see lock-timeout.ts); 0 = the server's. */
    private readonly lockTimeoutMs = 0,
  ) {}

  private table(exec: Executor, queue: string): string | Promise<string> {
    return this.tables.cached(queue) ?? this.tables.table(exec, queue);
  }

  async send(
    exec: Executor,
    queue: string,
    message: string,
    headers: string | null,
    vt: VtSpec,
  ): Promise<number> {
    const t = await this.table(exec, queue);
    const rows = await run<{ msg_id: string }>(
      exec,
      `INSERT INTO ${t} (vt, message, headers) VALUES (${vtSql(vt, 3)}, $1::jsonb, $2::jsonb) RETURNING msg_id`,
      vtParams([message, headers], vt),
      { prepare: true },
    );
    return Number(rows[0]!.msg_id);
  }

  async sendBatch(
    exec: Executor,
    queue: string,
    messages: string[],
    headers: (string | null)[] | null,
    vt: VtSpec,
  ): Promise<number[]> {
    const t = await this.table(exec, queue);
    // The vt is computed once for the whole batch (an InitPlan), as
    // _send_batch does. Unlike _send_batch there is no ORDER BY here: a scan
    // of unnest() yields the array in order and identity values are drawn
    // in that order, so the ids already follow the array; the explicit
    // sorts cost ~25 % of a 100-row batch (measured), so the ids are sorted
    // in JavaScript instead.
    // The messages and headers as JSON arrays (jsonArray), zipped row by row.
    const rows = await run<{ msg_id: string }>(
      exec,
      `INSERT INTO ${t} (vt, message, headers)
       SELECT (SELECT ${vtSql(vt, 3)}), m.msg, m.hdr -> 0
         FROM ROWS FROM (jsonb_array_elements($1::jsonb), jsonb_array_elements($2::jsonb)) AS m(msg, hdr)
       RETURNING msg_id`,
      vtParams([jsonArray(messages), headerArray(headers)], vt),
      { prepare: true },
    );
    return ids(rows).sort((a, b) => a - b);
  }

  delete(exec: Executor, queue: string, msgIds: number[], locked?: Locked): Promise<number[]> {
    return this.finishWhere(exec, queue, 'delete', BY_IDS, [msgIds], locked);
  }

  archive(exec: Executor, queue: string, msgIds: number[], locked?: Locked): Promise<number[]> {
    return this.finishWhere(exec, queue, 'archive', BY_IDS, [msgIds], locked);
  }

  /**
   * Deletes, or moves to the archive, the messages of `queue` matching
   * `where` (its parameters are `params`), under the lock guard; their ids.
   * The one finishing statement of the batch (`delete`, `archive`) and the
   * held-only (`delete_if_held`, `archive_if_held`) forms.
   */
  async finishWhere(
    exec: Executor,
    queue: string,
    how: 'delete' | 'archive',
    where: string,
    params: unknown[],
    locked?: Locked,
  ): Promise<number[]> {
    const q = await this.table(exec, queue);
    const cond = where + lockGuardWhere(this.lockTimeoutMs, params.length + 1);
    // RETURNING rather than rowCount: a caller's foreign client may not report it.
    const text =
      how === 'delete'
        ? `DELETE FROM ${q} WHERE ${cond} RETURNING msg_id`
        : archiveSql(
            q,
            this.tables.cached(queue, 'a') ?? (await this.tables.table(exec, queue, 'a')),
            cond,
          );
    const rows = await run<{ msg_id: string }>(
      exec,
      text,
      withLockParam(this.lockTimeoutMs, params),
      { prepare: true, locked },
    );
    return ids(rows);
  }

  /**
   * A send that skips a message a unique index refuses (`ON CONFLICT DO
   * NOTHING`): its id, or null when skipped. What tasks' enqueue does with
   * an idempotency key (the SQL function `<tasks>.enqueue`, sql/tasks/).
   */
  async sendUnlessDuplicate(
    exec: Executor,
    queue: string,
    message: string,
    headers: string | null,
    vt: VtSpec,
  ): Promise<number | null> {
    const t = await this.table(exec, queue);
    const rows = await run<{ msg_id: string }>(
      exec,
      `INSERT INTO ${t} (vt, message, headers) VALUES (${vtSql(vt, 3)}, $1::jsonb, $2::jsonb)
       ON CONFLICT DO NOTHING RETURNING msg_id`,
      vtParams([message, headers], vt),
      { prepare: true },
    );
    return rows[0] ? Number(rows[0].msg_id) : null;
  }

  /**
   * The batch form: one vt per message (`at`, or a delay), rows a unique
   * index refuses skipped. Returns the inserted ids in array order with the
   * value of header `keyHeader` of each (to map keyed rows back).
   *
   * The messages and headers go in as JSON arrays (jsonArray, headerArray),
   * zipped row by row with `ROWS FROM`. A batch with no delay and no run
   * time binds no vt arrays at all.
   */
  async sendBatchUnlessDuplicate(
    exec: Executor,
    queue: string,
    messages: string[],
    headers: (string | null)[],
    vts: VtSpec[],
    keyHeader: string,
  ): Promise<{ id: number; key: string | null }[]> {
    const t = await this.table(exec, queue);
    const now = vts.every(isNow);
    const params: unknown[] = [jsonArray(messages), headerArray(headers), keyHeader];
    if (!now) {
      const at = vts.map((v) => (v.kind === 'at' ? `"${v.value.toISOString()}"` : 'NULL'));
      const ms = vts.map((v) => (v.kind === 'at' ? 0 : v.kind === 'ms' ? v.value : v.value * 1000));
      params.push(`{${at.join(',')}}`, `{${ms.join(',')}}`);
    }
    // Identity values follow the ORDER BY, so unkeyed rows map back in order.
    const rows = await run<{ msg_id: string; k: string | null }>(
      exec,
      `INSERT INTO ${t} (vt, message, headers)
       SELECT ${now ? 'clock_timestamp()' : 'COALESCE(m.run_at, clock_timestamp() + make_interval(secs => m.delay_ms / 1000))'},
              m.msg, m.hdr -> 0
         FROM ROWS FROM (jsonb_array_elements($1::jsonb), jsonb_array_elements($2::jsonb)${now ? '' : ', unnest($4::timestamptz[]), unnest($5::float8[])'})
              WITH ORDINALITY AS m(msg, hdr${now ? '' : ', run_at, delay_ms'}, ord)
        ORDER BY m.ord
       ON CONFLICT DO NOTHING
       RETURNING msg_id, headers ->> $3::text AS k`,
      params,
      { prepare: true },
    );
    return rows.map((r) => ({ id: Number(r.msg_id), key: r.k })).sort((a, b) => a.id - b.id);
  }

  /**
   * Mirrors `read_locked`: visible messages locked FOR UPDATE SKIP LOCKED,
   * not updated; timestamps as epoch seconds (rows.ts, EpochMessageRow).
   */
  async readLocked(
    exec: Executor,
    queue: string,
    qty: number,
    conditional: string,
  ): Promise<EpochMessageRow[]> {
    const t = await this.table(exec, queue);
    // No condition (the common case): a statement without the jsonb test.
    // A common batch size is a constant, as in readSql: with `LIMIT $n` the
    // plan cache never settles on the generic plan (its estimate is a tenth
    // of the table) and re-plans every call.
    const all = conditional === '{}';
    const literal = LITERAL_QTY.has(qty);
    const params: unknown[] = all ? [] : [conditional];
    if (!literal) params.push(qty);
    return run<EpochMessageRow>(
      exec,
      `SELECT ${EPOCH_MESSAGE_COLUMNS('m')} FROM ${t} m
        WHERE vt <= clock_timestamp()${all ? '' : ` AND ($1::jsonb = '{}'::jsonb OR message @> $1::jsonb)`}
        ORDER BY msg_id LIMIT ${literal ? String(qty) : `$${params.length}`} FOR UPDATE SKIP LOCKED`,
      params,
      { prepare: true },
    );
  }

  /**
   * Deletes, or moves to the archive, messages this transaction locked with
   * readLocked (processBatch): they cannot be waited on, so no lock guard,
   * and nothing is returned.
   */
  async finishLocked(
    exec: Executor,
    queue: string,
    how: 'delete' | 'archive',
    msgIds: number[],
  ): Promise<void> {
    const q = await this.table(exec, queue);
    const text =
      how === 'delete'
        ? `DELETE FROM ${q} WHERE ${BY_IDS}`
        : archiveSql(
            q,
            this.tables.cached(queue, 'a') ?? (await this.tables.table(exec, queue, 'a')),
            BY_IDS,
          );
    await run(exec, text, [msgIds], { prepare: true });
  }
}
