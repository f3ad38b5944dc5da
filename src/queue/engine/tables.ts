import { execute, type Executor } from '../../driver/types.js';
import { quoteIdent } from '../../driver/quote.js';

/** The two tables of a queue: its messages (`q`) and its archive (`a`). */
export type TablePrefix = 'q' | 'a';

/** More names than this and the cache starts over (queues come and go: the bus makes one per member). */
const MAX_CACHED = 10_000;

/**
 * The one table-name resolver of the queue engine: a queue's quoted table,
 * resolved once per client by the SQL's own naming rule
 * (`<schema>.format_table_name`, sql/queue/0001_core.sql) and cached. Every
 * statement that names a queue table directly (the prepared hot paths, the
 * held-only finishing, tasks' enqueue, the list/get operations) asks here.
 */
export class TableResolver {
  private readonly names = new Map<string, string>();
  /** The quoted schema. */
  readonly s: string;

  constructor(readonly schema: string) {
    this.s = quoteIdent(schema);
  }

  /** The table already resolved for `queue`, if any (the hot paths skip an await with it). */
  cached(queue: string, prefix: TablePrefix = 'q'): string | undefined {
    return this.names.get(prefix + ':' + queue);
  }

  /** The quoted `<schema>.<table>` of the queue's messages (`q`) or archive (`a`). */
  async table(exec: Executor, queue: string, prefix: TablePrefix = 'q'): Promise<string> {
    const hit = this.cached(queue, prefix);
    if (hit) return hit;
    const res = await execute<{ t: string }>(
      exec,
      `SELECT ${this.s}.format_table_name($1, $2) AS t`,
      [queue, prefix],
      { prepare: true },
    );
    const t = `${this.s}.${quoteIdent(res.rows[0]!.t)}`;
    if (this.names.size > MAX_CACHED) this.names.clear();
    this.names.set(prefix + ':' + queue, t);
    return t;
  }

  /** Forget the queue's names (after a drop). */
  forget(queue: string): void {
    this.names.delete('q:' + queue);
    this.names.delete('a:' + queue);
  }
}
