import { epochMs, type Message } from '../queue/index.js';

/** What a worker needs of a leased job (the fetch returns only these columns). */
export type JobMessage = Pick<
  Message<unknown>,
  'msgId' | 'readCount' | 'enqueuedAt' | 'message' | 'headers'
>;

/** A row of the prepared lease: a job, or (msg_id null) "rate-limited: ask the SQL function". */
export interface LeaseRow {
  msg_id: string | number | bigint | null;
  read_ct: number | string;
  /** Epoch seconds (`extract(epoch …)`, numeric text or a number by driver): cheaper to decode than a timestamptz. */
  enqueued_at: string | number;
  message: unknown;
  headers: unknown;
}

export const toJobMessage = (r: LeaseRow): JobMessage => ({
  msgId: Number(r.msg_id),
  readCount: Number(r.read_ct),
  enqueuedAt: new Date(epochMs(r.enqueued_at)),
  message: r.message,
  headers: (r.headers as Message<unknown>['headers'] | null) ?? null,
});

/**
 * The worker's lease of a plain FIFO task (no lifo, groups, priorities or
 * concurrency limit) as one prepared statement: what `<tasks>.fetch_after`
 * does (sql/tasks/*_fetch_after.sql; with after_id 0, what `<tasks>.fetch`
 * does for such a task), without PL/pgSQL planning its dynamic UPDATE on
 * every call. test/tasks/fetch-parity.test.ts runs both on twin queues.
 *
 *   $1 qty, $2 lease_ms, $3 after_id (0: the whole queue), $4 the task's name.
 *
 * The jobs after $3 first, then, if the batch is short, the queue's head up
 * to $3 (fetch_after's top-up by fetch(): the jobs above $3 it could take are
 * already taken). The task's controls are read in the same statement: a
 * paused task leases nothing; a rate-limited one leases nothing and returns
 * one row with a null msg_id, and the caller asks the SQL function (the
 * rate limit's sliding-window log stays in SQL only).
 *
 * The candidates are locked (FOR UPDATE SKIP LOCKED) and updated by row
 * address (`ctid`, a TID scan) instead of a second primary-key probe per
 * row. A locked row cannot move before this statement ends. A candidate
 * updated and committed by another transaction between this statement's
 * snapshot and its lock is locked at its newest version (and re-checked:
 * still runnable); that version is newer than the snapshot, so the TID scan
 * does not see it and the row is simply not leased this time (a later fetch
 * takes it): never leased twice, never lost. test/tasks/fetch-parity.test.ts
 * leases while another connection keeps rewriting the rows. A 500-job
 * lease touches ~510 fewer buffers.
 *
 * The lease commits durably, like the SQL functions' leases: a lease lost
 * in a crash would be handed out again with the same read count, and the
 * first holder (still running in its process) could then finish or fail
 * the job the second holds (docs/tasks.md, "Fenced finishing").
 */
export function leaseSql(queueTable: string, tasksSchema: string): string {
  const q = queueTable;
  const pick = (cond: string): string =>
    `SELECT * FROM (SELECT ctid FROM ${q} WHERE ${cond} AND vt <= clock_timestamp()
                     ORDER BY msg_id LIMIT $1::integer FOR UPDATE SKIP LOCKED) AS x`;
  return `WITH ctl AS MATERIALIZED (
  SELECT coalesce(c.paused, false) AS paused, c.rate_limit IS NOT NULL AS rated
    FROM (SELECT 1) AS one
    LEFT JOIN ${tasksSchema}.queues c ON c.queue_name = $4::text),
leased AS (
  UPDATE ${q} m
     SET vt = clock_timestamp() + make_interval(secs => $2::integer / 1000.0),
         read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
   WHERE m.ctid = ANY(ARRAY(
           SELECT c.ctid FROM (${pick('msg_id > $3::bigint')}
                                 UNION ALL
                                 ${pick('msg_id <= $3::bigint')}) AS c
            WHERE NOT (SELECT paused OR rated FROM ctl)
            LIMIT $1::integer))
  RETURNING m.msg_id, m.read_ct, extract(epoch FROM m.enqueued_at) AS enqueued_at, m.message, m.headers)
SELECT msg_id, read_ct, enqueued_at, message, headers FROM leased
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL FROM ctl WHERE rated`;
}
