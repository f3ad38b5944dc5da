import type { Executor } from '../../driver/types.js';
import { EPOCH_MESSAGE_COLUMNS, type EpochMessageRow } from '../rows.js';
import { run } from './calls.js';
import type { TableResolver } from './tables.js';

/**
 * `read` (sql/queue/0001_core.sql) as one prepared statement: the same
 * selection (visible, matching `conditional`, lowest msg_ids, SKIP LOCKED),
 * the same update and the same returned rows, planned once per connection
 * instead of on every call (the function's EXECUTE). The function's
 * `_before_read` (dead-letter policies, sql/queue/0003_reliability.sql) is
 * reduced to its early return: when dead letters are due the statement
 * changes nothing and returns one row with a NULL msg_id, and the caller runs
 * the SQL function. test/queue/read-parity.test.ts compares both.
 *
 * The rows' timestamps are epoch seconds (rows.ts, EpochMessageRow): the
 * same instants, cheaper to decode.
 *
 * Parameters: the queue name, the vt (seconds from now, or a time), the
 * condition (jsonb) unless it is empty, the batch size unless a constant.
 */
export function readSql(
  s: string,
  t: string,
  vt: 'integer' | 'timestamptz',
  qty?: number,
  conditional = true,
): string {
  // $1 queue, $2 vt, then the condition and the batch size when they are parameters.
  let n = 2;
  const cond = conditional ? `$${++n}::jsonb` : null;
  // A common batch size is written as a constant (one more prepared
  // statement each, so only these), and no condition means no jsonb test:
  // otherwise the generic plan's estimates (a tenth of the table for
  // `LIMIT $n`, a fraction for the test) make the plan cache re-plan every
  // call (~0.17 ms).
  const limit = qty !== undefined && LITERAL_QTY.has(qty) ? String(qty) : `$${++n}`;
  // The integer form computes clock + vt seconds once, at call start, as the function does.
  const vtExpr =
    vt === 'integer' ? 'clock_timestamp() + make_interval(secs => $2::integer)' : '$2::timestamptz';
  return `WITH g AS MATERIALIZED (
  SELECT ${vtExpr} AS vt,
         NOT EXISTS (SELECT 1 FROM ${s}._dead_letter_due d
                      WHERE d.queue_table = lower('q_' || $1::text) AND d.due_at <= clock_timestamp()) AS ok),
cte AS (
  SELECT msg_id FROM ${t}
   WHERE (SELECT ok FROM g) AND vt <= clock_timestamp()${cond ? `\n     AND (${cond} IS NULL OR ${cond} = '{}'::jsonb OR message @> ${cond})` : ''}
   ORDER BY msg_id
   LIMIT ${limit}
     FOR UPDATE SKIP LOCKED),
upd AS (
  UPDATE ${t} m
     SET vt = (SELECT vt FROM g), read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
   WHERE m.msg_id = ANY(ARRAY(SELECT msg_id FROM cte))
  RETURNING ${EPOCH_MESSAGE_COLUMNS('m')})
SELECT * FROM upd
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE NOT (SELECT ok FROM g)`;
}

/** Batch sizes readSql (and readLocked, messages.ts) write as constants. */
export const LITERAL_QTY = new Set([1, 10, 20, 50, 100, 200, 500, 1000]);

/** The prepared `read` of one schema (see readSql). */
export class ReadStatement {
  /** Statement texts by table and form: built once, not per call. */
  private readonly texts = new Map<string, string>();

  constructor(private readonly tables: TableResolver) {}

  private text(
    t: string,
    vt: 'integer' | 'timestamptz',
    qty: number,
    conditional: boolean,
  ): string {
    const literal = LITERAL_QTY.has(qty);
    const key = `${t} ${vt} ${literal ? qty : '$'} ${conditional ? 'c' : ''}`;
    let text = this.texts.get(key);
    if (text === undefined) {
      if (this.texts.size > 10_000) this.texts.clear();
      text = readSql(this.tables.s, t, vt, literal ? qty : undefined, conditional);
      this.texts.set(key, text);
    }
    return text;
  }

  /** The messages read (no defined order), or null when the SQL function must run. */
  async read(
    exec: Executor,
    queue: string,
    qty: number,
    conditional: string,
    vt: readonly [number | Date, 'integer' | 'timestamptz'],
  ): Promise<EpochMessageRow[] | null> {
    const t = this.tables.cached(queue) ?? (await this.tables.table(exec, queue));
    const all = conditional === '{}';
    const params: unknown[] = [queue, vt[0]];
    if (!all) params.push(conditional);
    if (!LITERAL_QTY.has(qty)) params.push(qty);
    const rows = await run<EpochMessageRow>(exec, this.text(t, vt[1], qty, !all), params, {
      prepare: true,
    });
    if (rows.length > 0 && rows[rows.length - 1]!.msg_id == null) return null;
    return rows;
  }
}
