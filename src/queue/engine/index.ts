import { quoteIdent } from '../../driver/quote.js';
import type { Executor } from '../../driver/types.js';
import { call, type Arg, type CallOptions } from './calls.js';
import { GroupedReadStatements } from './grouped.js';
import { HeldStatements } from './held.js';
import { MessageStatements } from './messages.js';
import { ReadStatement } from './read.js';
import { RecordStatements } from './records.js';
import { TableResolver } from './tables.js';

/**
 * The queue engine of one schema: every statement the queue layer (and the
 * layers built on it) runs against the queue's SQL functions and tables.
 *
 * - `tables`: the one table-name resolver (and its cache);
 * - `messages`: the prepared hot paths (send, send batch, delete, archive,
 *   read locked) and the row operations other layers need;
 * - `held`: the held-only finishing statements a consumer runs per message;
 * - `records`: reading rows without reading messages (get by id, list, count);
 * - `grouped`, `reader`: the FIFO group reads and `read`, each in one
 *   prepared statement (falling back to the SQL function when dead letters
 *   are due or the statement does not settle the read);
 * - `call`: a SQL-function call (way one of writing a statement; the other
 *   is a prepared statement on `tables` in `messages` / `held`).
 *
 * One instance per QueueClient (`client.engine`).
 */
export class QueueEngine {
  /** The quoted schema. */
  readonly s: string;
  readonly tables: TableResolver;
  readonly messages: MessageStatements;
  readonly held: HeldStatements;
  readonly records: RecordStatements;
  readonly grouped: GroupedReadStatements;
  readonly reader: ReadStatement;

  constructor(
    readonly schema: string,
    /** lock_timeout of the statements that wait on a lock (lock-timeout.ts); 0 = the server's. */
    readonly lockTimeoutMs = 0,
  ) {
    this.s = quoteIdent(schema);
    this.tables = new TableResolver(schema);
    this.messages = new MessageStatements(this.tables, lockTimeoutMs);
    this.held = new HeldStatements(this.tables, this.messages, lockTimeoutMs);
    this.records = new RecordStatements(this.tables);
    this.grouped = new GroupedReadStatements(this.tables);
    this.reader = new ReadStatement(this.tables);
  }

  /** Calls `<schema>.<fn>(args)`; see calls.ts. */
  call<R>(exec: Executor, fn: string, args: readonly Arg[], options?: CallOptions): Promise<R[]> {
    return call<R>(exec, this.s, fn, args, options);
  }
}

export { ASYNC_COMMIT, call, type Arg, type CallOptions } from './calls.js';
export { MOVED as ARCHIVE_COLUMNS } from './messages.js';
export type { ArchivedRow, ListOptions, LiveRow } from './records.js';
export type { VtSpec } from './vt.js';
