import { ARCHIVE_COLUMNS as MOVED, ASYNC_COMMIT, type QueueEngine } from '../queue/index.js';
import { execute, type Executor } from '../driver/types.js';
import { toBackendMessages, type BackendMessage, type BackendRow } from './types.js';

/**
 * DirectBackend's hot path as prepared statements against the member queues'
 * tables (resolved by the queue engine's one TableResolver), instead of
 * through the queue engine's PL/pgSQL functions, whose EXECUTE plans its
 * statement on every call (0.36 ms for an empty `read` against 0.04 ms
 * prepared, 1.4 ms for nine `send`s against 0.35 ms in one prepared
 * statement, PostgreSQL 15 here). Each does exactly what the function it
 * copies does, for what the bus calls it with; test/bus/direct-parity.test.ts
 * runs both on twin queues and compares the results and the rows left behind:
 *
 * - `publish`: `send(queue, message[, headers])` once per peer (one INSERT
 *   per peer table, `sql/queue/0001_core.sql` `_send`), and a NOTIFY on each
 *   peer's wake channel, in one statement (one round trip, one commit);
 * - `read`: `read(queue, vt integer, qty)` without a condition, after
 *   `archive(queue, handled ids)` in the same statement. Unlike the function
 *   it does not run `_before_read` (dead-letter policies): the bus never
 *   sets one on its member queues, whose names are random per member;
 * - `archive`: `archive(queue, msg_ids bigint[])`.
 *
 * `peek` (a listening member's read) copies no function: see its comment;
 * its archive part is `archive(queue, ids)` (parity-tested the same way).
 *
 * Reads and archives commit asynchronously (ASYNC_COMMIT): losing one in a
 * crash only makes a message visible again (at least once).
 */
export class DirectStatements {
  constructor(private readonly engine: QueueEngine) {}

  private table(exec: Executor, queue: string, prefix: 'q' | 'a' = 'q'): Promise<string> {
    const hit = this.engine.tables.cached(queue, prefix);
    return hit ? Promise.resolve(hit) : this.engine.tables.table(exec, queue, prefix);
  }

  /**
   * One message to every peer, each copy followed by a NOTIFY on the peer's
   * wake channel; the ids in peer order. One statement per peer set (the
   * tables are part of its text), prepared: a new set after a join or leave
   * is one more prepared statement on the connection, as a new queue is for
   * the queue engine's own prepared sends.
   */
  async publish(
    exec: Executor,
    peers: readonly string[],
    wake: readonly string[],
    message: string,
    headers: string | null,
    asyncCommit: boolean,
  ): Promise<number[]> {
    const tables: string[] = [];
    for (const q of peers) tables.push(await this.table(exec, q));
    const inserts = tables.map(
      (t, i) =>
        `s${i} AS (INSERT INTO ${t} (vt, message, headers) VALUES (clock_timestamp(), $1::jsonb, $2::jsonb) RETURNING msg_id)`,
    );
    const ids = tables.map((_, i) => `(SELECT msg_id FROM s${i})`).join(', ');
    // The NOTIFYs in a one-row subquery of the FROM list: evaluated once, at
    // the statement; they go out at commit (the caller's, in a transaction).
    const text = `WITH ${inserts.join(', ')}
      SELECT ARRAY[${ids}]::text[] AS ids
        FROM ${asyncCommit ? `${ASYNC_COMMIT}, ` : ''}(SELECT count(pg_notify(w, '')) FROM unnest($3::text[]) AS w) AS n`;
    const res = await execute<{ ids: string[] }>(exec, text, [message, headers, wake], {
      prepare: true,
    });
    return (res.rows[0]?.ids ?? []).map(Number);
  }

  /**
   * Up to `qty` visible messages, hidden for `vtSeconds` from the start of
   * the call; msg_id order. `archive` (handled messages) is archived by the
   * same statement first: `archive(queue, ids)` then `read(...)`, in one
   * round trip and one commit. The read leaves those ids alone (the
   * statement's parts share one snapshot, in which they are still there).
   */
  async read(
    exec: Executor,
    queue: string,
    vtSeconds: number,
    qty: number,
    archive: readonly number[] = [],
  ): Promise<BackendMessage[]> {
    const t = await this.table(exec, queue);
    const a = await this.table(exec, queue, 'a');
    const res = await execute<BackendRow>(
      exec,
      `${archiveFirst(t, a)},
       cte AS (
         SELECT msg_id FROM ${t}
          WHERE vt <= clock_timestamp() AND msg_id <> ALL($3::bigint[])
          ORDER BY msg_id
          LIMIT $1
          FOR UPDATE SKIP LOCKED),
       until AS (SELECT clock_timestamp() + make_interval(secs => $2::integer) AS vt)
       UPDATE ${t} m
          SET vt = (SELECT until.vt FROM until), read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
         FROM ${ASYNC_COMMIT}
        WHERE m.msg_id = ANY(ARRAY(SELECT msg_id FROM cte))
       RETURNING m.msg_id::text, m.message, m.headers`,
      [qty, vtSeconds, archive],
      { prepare: true },
    );
    return toBackendMessages(res.rows).sort((a, b) => a.msgId - b.msgId);
  }

  /**
   * A listening member's read (the bus's own, not a copy of a queue-engine
   * function): up to `qty` visible messages in msg_id order, leaving out
   * `skip` (the ones the member handled and has not archived yet, the bus
   * keeps that list), without hiding or counting them. The member is the
   * only reader of its queue and skips by id what it already has, so the
   * visibility timeout has nothing to guard; a read then writes nothing
   * (no row version, no WAL, no commit to wait for). With `archive` the
   * same statement first archives those (as `archive(queue, ids)` does).
   */
  async peek(
    exec: Executor,
    queue: string,
    qty: number,
    archive: readonly number[],
    skip: readonly number[],
  ): Promise<BackendMessage[]> {
    const t = await this.table(exec, queue);
    const select = (from: string) => `SELECT m.msg_id::text, m.message, m.headers FROM ${from}
        WHERE m.vt <= clock_timestamp() AND m.msg_id <> ALL($2::bigint[])
        ORDER BY m.msg_id LIMIT $1`;
    if (archive.length === 0) {
      const res = await execute<BackendRow>(exec, select(`${t} m`), [qty, skip], { prepare: true });
      return toBackendMessages(res.rows);
    }
    const a = await this.table(exec, queue, 'a');
    // Archived in the same statement; its SELECT still sees them (one snapshot): skip them too.
    const res = await execute<BackendRow>(
      exec,
      `${archiveFirst(t, a)}
       ${select(`${t} m, ${ASYNC_COMMIT}`)}`,
      [qty, [...skip, ...archive], archive],
      { prepare: true },
    );
    return toBackendMessages(res.rows);
  }

  /** Moves the messages to the queue's archive; the ids that were there. */
  async archive(exec: Executor, queue: string, msgIds: readonly number[]): Promise<number[]> {
    const q = await this.table(exec, queue);
    const a = await this.table(exec, queue, 'a');
    const res = await execute<{ msg_id: string }>(
      exec,
      `WITH moved AS (
         DELETE FROM ${q} WHERE msg_id = ANY($1::bigint[])
         RETURNING ${MOVED})
       INSERT INTO ${a} (${MOVED})
       SELECT ${MOVED} FROM moved, ${ASYNC_COMMIT}
       RETURNING msg_id::text`,
      [msgIds],
      { prepare: true },
    );
    return res.rows.map((r) => Number(r.msg_id));
  }
}

/** The reads' first part: move the ids in $3 from queue table `t` to its archive `a` (what `archive()` does). */
const archiveFirst = (t: string, a: string): string => `WITH moved AS (
         DELETE FROM ${t} WHERE msg_id = ANY($3::bigint[])
         RETURNING ${MOVED}),
       archived AS (
         INSERT INTO ${a} (${MOVED})
         SELECT ${MOVED} FROM moved)`;
