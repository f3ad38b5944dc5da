import type { Executor } from '../../driver/types.js';
import type { MessageRow } from '../rows.js';
import { run } from './calls.js';
import type { TableResolver } from './tables.js';

/** The SQL function's mode names (sql/queue/0007_fifo_speed.sql, `_read_grouped`). */
export type GroupedMode = 'grouped' | 'rr' | 'head';

/** The group key, as the SQL functions and the group-key index compute it. */
const GROUP_KEY = `COALESCE(headers ->> 'x-pgmq-group', '_default_fifo_group')`;

/**
 * How many rows of the queue (in msg_id order) the statement reads to find
 * groups: at least the SQL function's first prefix (`greatest(4 * qty, 64)`),
 * rounded up to a power of two. Any prefix gives the same groups in the same
 * order (see sql/queue/0007_fifo_speed.sql: the groups whose head lies in a
 * prefix are the first ones of the full pass), and the statement leaves a
 * read its prefix does not settle to the function. The length is written
 * into the statement as a constant: with a parameter the generic plan would
 * assume a tenth of the table and the plan cache would keep re-planning;
 * rounding keeps the number of prepared statements small.
 */
export function prefixLength(qty: number): number {
  let len = 64;
  while (len < qty * 4) len *= 2;
  return len;
}

/**
 * One FIFO group read (`read_grouped`, `_rr`, `_head`) in ONE prepared
 * statement, for the case the SQL function `_read_grouped`
 * (sql/queue/0007_fifo_speed.sql) settles from its first prefix: the queue
 * has no dead letters due, enough groups (or the whole queue) lie in the
 * prefix, and (read_grouped) every candidate is still visible and unlocked
 * when locked. The statement then does what the function does, in the same
 * order: read the prefix in msg_id order, take each visible group's advisory
 * lock in head order until `qty` messages (head, rr: groups) are found, list
 * a locked group's visible messages from its head (read_grouped, by the
 * group-key index), lock the candidates, set their vt and return them in
 * selection order. In every other case it changes nothing and returns one
 * row with a NULL msg_id: the caller then runs the SQL function, which is
 * the contract (test/queue/grouped-parity.test.ts compares both).
 *
 * One statement instead of the function's five to eight dynamic ones: each
 * of those is planned on every call; this one once per connection.
 *
 * Concurrency. The function lists a group's messages after taking its lock
 * (a fresh snapshot), so a reader that held the group has committed and its
 * taken messages are seen as taken. Here the prefix, the lock and the list
 * share one snapshot, taken before the lock: a reader that held the group
 * may have committed in between. Its changes are caught when the candidates
 * are locked: `FOR UPDATE` re-reads each row's latest version and re-checks
 * `vt`, so a message taken (or deleted) since the snapshot fails the check.
 * read_grouped then uses the candidates only when every one of them passed
 * (as the function's short path requires), otherwise it falls back; for
 * head and rr each candidate is its group's head, so a failed one just
 * leaves its group out, as in the function.
 */
export function groupedReadSql(
  s: string,
  t: string,
  mode: GroupedMode,
  vt: 'integer' | 'timestamptz',
  prefix: number,
): string {
  // $1 queue name, $2 qty, $3 vt, $4 quoted table (regclass input; read_grouped only).
  const len = String(Math.trunc(prefix));
  const vtExpr =
    vt === 'integer' ? 'clock_timestamp() + make_interval(secs => $3::integer)' : '$3::timestamptz';
  // Nothing due for _before_read (its early return) and, for read_grouped, the
  // group-key index present (else the function's full pass).
  const index =
    mode === 'grouped'
      ? ` AND EXISTS (SELECT 1 FROM pg_catalog.pg_class i JOIN pg_catalog.pg_index x ON x.indexrelid = i.oid
                       WHERE x.indrelid = $4::text::regclass
                         AND i.relname = (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = $4::text::regclass) || '_fifo_grp_idx')`
      : '';
  // The locked groups' candidates, in selection order, at most qty. The lock
  // filter sits above the ordered subquery (OFFSET 0 fences it), so locks are
  // tried lazily in head order and stop once the LIMIT is reached, as the
  // function's loop stops at qty.
  const cand =
    mode === 'grouped'
      ? `SELECT l.msg_id
           FROM (SELECT grp, head FROM heads WHERE pg_try_advisory_xact_lock(hashtextextended(grp, (SELECT seed FROM g)))) h
           CROSS JOIN LATERAL (
             SELECT m.msg_id FROM ${t} m
              WHERE ${GROUP_KEY.replace(/headers/g, 'm.headers')} = (h.grp COLLATE "default")
                AND m.msg_id >= h.head AND m.vt <= clock_timestamp()
              ORDER BY m.msg_id LIMIT $2) l
          LIMIT $2`
      : `SELECT head AS msg_id FROM heads WHERE pg_try_advisory_xact_lock(hashtextextended(grp, (SELECT seed FROM g))) LIMIT $2`;
  // Whether the first prefix settles the read: enough candidates, or the
  // prefix is the whole queue (rr with fewer groups than qty needs later
  // rounds: the function's full pass).
  const settled = mode === 'rr' ? `n >= $2 OR (complete AND n = 0)` : `n >= $2 OR complete`;
  // read_grouped takes its candidates only when all of them are locked and
  // visible (the function's short statement); otherwise the function's general
  // statement decides. head and rr: one candidate per group, nothing to block.
  const allTaken = mode === 'grouped' ? '(SELECT count(*) FROM lk) = (SELECT n FROM pre)' : 'true';
  // The group lock's key: the group hashed with the queue table's oid as the
  // seed, as the SQL functions do (sql/queue/0014_group_lock_scope.sql), so a
  // group held in one queue never hides the same-named group of another.
  const seed = `'${t.replace(/'/g, "''")}'::regclass::oid::bigint`;
  return `WITH g AS MATERIALIZED (
  SELECT clock_timestamp() AS now, ${vtExpr} AS vt, ${seed} AS seed,
         NOT EXISTS (SELECT 1 FROM ${s}._dead_letter_due d
                      WHERE d.queue_table = lower('q_' || $1::text) AND d.due_at <= clock_timestamp())${index} AS ok),
p AS MATERIALIZED (
  SELECT ${GROUP_KEY} COLLATE "C" AS grp, msg_id, vt <= (SELECT now FROM g) AS vis
    FROM ${t} WHERE (SELECT ok FROM g) ORDER BY msg_id LIMIT ${len}),
heads AS (
  SELECT grp, head FROM (SELECT DISTINCT ON (grp) grp, msg_id AS head, vis FROM p ORDER BY grp, msg_id) s
   WHERE vis ORDER BY head OFFSET 0),
cand AS MATERIALIZED (
  SELECT msg_id, row_number() OVER () AS ord FROM (${cand}) c),
pre AS MATERIALIZED (
  SELECT n, ${settled} AS go
    FROM (SELECT (SELECT count(*) FROM cand) AS n, (SELECT count(*) FROM p) < ${len} AS complete) x),
lk AS MATERIALIZED (
  SELECT m.msg_id, c.ord
    FROM cand c JOIN ${t} m ON m.msg_id = c.msg_id
   WHERE (SELECT go FROM pre) AND m.vt <= clock_timestamp()
     FOR UPDATE OF m SKIP LOCKED),
fin AS MATERIALIZED (
  SELECT (SELECT ok FROM g) AND (SELECT go FROM pre) AND ${allTaken} AS done),
upd AS (
  UPDATE ${t} m
     SET vt = (SELECT vt FROM g), read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
    FROM lk
   WHERE m.msg_id = lk.msg_id AND (SELECT done FROM fin)
  RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers, lk.ord)
SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers, ord FROM upd
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 WHERE NOT (SELECT done FROM fin)
ORDER BY ord`;
}

/** The prepared group reads of one schema (see groupedReadSql). */
export class GroupedReadStatements {
  constructor(private readonly tables: TableResolver) {}

  /**
   * The read's messages in selection order, or null when the statement left
   * the read to the SQL function (see groupedReadSql). `qty` ≥ 1.
   */
  async read(
    exec: Executor,
    queue: string,
    mode: GroupedMode,
    qty: number,
    vt: readonly [number | Date, 'integer' | 'timestamptz'],
  ): Promise<MessageRow[] | null> {
    const t = this.tables.cached(queue) ?? (await this.tables.table(exec, queue));
    const rows = await run<MessageRow & { ord: string }>(
      exec,
      groupedReadSql(this.tables.s, t, mode, vt[1], prefixLength(qty)),
      mode === 'grouped' ? [queue, qty, vt[0], t] : [queue, qty, vt[0]],
      { prepare: true },
    );
    if (rows.length > 0 && rows[0]!.msg_id == null) return null;
    return rows;
  }
}
