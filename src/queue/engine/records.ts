import { quoteLiteral } from '../../driver/quote.js';
import type { Executor } from '../../driver/types.js';
import { MESSAGE_COLUMNS, type MessageRow } from '../rows.js';
import { run } from './calls.js';
import type { TableResolver } from './tables.js';

/** A row of a queue's archive: the message row and when it was archived. */
export type ArchivedRow = MessageRow & { archived_at: Date | string };

/** A message row with what the database clock said when it was read. */
export type LiveRow = MessageRow & { now: Date | string };

export interface ListOptions {
  /** Only rows with a msg_id above this. Default 0. */
  afterId?: number;
  /** At most this many rows. Default: all. */
  limit?: number;
  /** Only rows whose header `header` is an object with one of `fields` equal to `value`. */
  headerMatch?: { header: string; fields: readonly string[]; value: string };
}

/**
 * Reading a queue's rows without reading its messages (no read_ct, no vt
 * change): inspection for the layers built on the queue (tasks' job
 * snapshots and dead letters, the testing helpers). Not hot: plain
 * statements on the tables the resolver names.
 */
export class RecordStatements {
  constructor(private readonly tables: TableResolver) {}

  /** The message `id` of the queue, with the database's clock; null when absent. */
  async get(exec: Executor, queue: string, id: number): Promise<LiveRow | null> {
    const t = await this.tables.table(exec, queue, 'q');
    const rows = await run<LiveRow>(
      exec,
      `SELECT ${MESSAGE_COLUMNS}, clock_timestamp() AS now FROM ${t} WHERE msg_id = $1::bigint`,
      [id],
    );
    return rows[0] ?? null;
  }

  /** The archived message `id` of the queue; null when absent. */
  async getArchived(exec: Executor, queue: string, id: number): Promise<ArchivedRow | null> {
    const t = await this.tables.table(exec, queue, 'a');
    const rows = await run<ArchivedRow>(
      exec,
      `SELECT ${MESSAGE_COLUMNS}, archived_at FROM ${t} WHERE msg_id = $1::bigint`,
      [id],
    );
    return rows[0] ?? null;
  }

  /** The queue's messages in msg_id order (see ListOptions). */
  async list(exec: Executor, queue: string, options: ListOptions = {}): Promise<MessageRow[]> {
    const t = await this.tables.table(exec, queue, 'q');
    const m = options.headerMatch;
    const params: unknown[] = [options.afterId ?? 0, options.limit ?? null];
    let match = '';
    if (m) {
      params.push(m.value, m.header, ...m.fields);
      const eq = m.fields.map((_, i) => `headers -> $4::text ->> $${i + 5}::text = $3::text`);
      match = ` AND (${eq.join(' OR ')})`;
    }
    return run<MessageRow>(
      exec,
      `SELECT ${MESSAGE_COLUMNS} FROM ${t}
        WHERE msg_id > $1::bigint${match} ORDER BY msg_id LIMIT $2`,
      params,
    );
  }

  /** How many messages the queue holds. */
  async count(exec: Executor, queue: string): Promise<number> {
    const t = await this.tables.table(exec, queue, 'q');
    const rows = await run<{ n: string }>(exec, `SELECT count(*) AS n FROM ${t}`, []);
    return Number(rows[0]!.n);
  }

  /** msg_id by header value, for the given values of the (unique) header `header`. */
  async findByHeader(
    exec: Executor,
    queue: string,
    header: string,
    values: string[],
  ): Promise<Map<string, number>> {
    const t = await this.tables.table(exec, queue, 'q');
    // The header name is a literal, not a parameter: a unique index on
    // (headers ->> '<header>') WHERE headers ? '<header>' must match the
    // prepared statement's generic plan.
    const h = quoteLiteral(header);
    const rows = await run<{ msg_id: string; k: string }>(
      exec,
      `SELECT msg_id, headers ->> ${h} AS k FROM ${t}
        WHERE headers ->> ${h} = ANY($1::text[]) AND headers ? ${h}`,
      [values],
      { prepare: true },
    );
    return new Map(rows.map((r) => [r.k, Number(r.msg_id)]));
  }
}
