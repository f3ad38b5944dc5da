import { execute, type Executor } from '../driver/types.js';
import { quoteIdent } from '../driver/quote.js';
import { DatabaseError } from '../errors.js';
import {
  MESSAGE_COLUMNS,
  QueueEngine,
  call,
  type Arg,
  type CallOptions,
  type MessageRow,
  type VtSpec,
} from '../queue/index.js';
import { H } from './headers.js';
import { leaseSql, toJobMessage, type JobMessage, type LeaseRow } from './lease.js';

/** When a job becomes visible: at a time, or after a delay from the database clock. */
export interface RunAt {
  at: Date | null;
  delayMs: number;
}

const vtOfRunAt = (r: RunAt): VtSpec =>
  r.at !== null ? { kind: 'at', value: r.at } : { kind: 'ms', value: r.delayMs };

/**
 * The tasks engine's statements. Enqueue is the queue engine's
 * `sendUnlessDuplicate` (a prepared INSERT straight into the task's queue
 * table doing what the SQL function `<tasks>.enqueue` does;
 * test/tasks/statement-parity.test.ts compares them): a PL/pgSQL call plans
 * its dynamic statement on every call, which costs ~45 % of single-row
 * insert throughput in our measurements. The worker's lease of a plain
 * FIFO task is likewise a prepared statement (fetchPlain, lease.ts;
 * test/tasks/fetch-parity.test.ts). Everything else calls the SQL
 * functions in sql/tasks/ (one batch of work per call) through the queue
 * engine's call helper.
 */
export class TaskStatements {
  /** The queue engine of the queue schema (tables, records, sends). */
  readonly queue: QueueEngine;
  /** The quoted tasks schema. */
  readonly t: string;
  /** The lease statement's text by queue table (see fetchPlain). */
  private readonly leases = new Map<string, string>();

  constructor(
    readonly queueSchema: string,
    readonly tasksSchema: string,
  ) {
    this.queue = new QueueEngine(queueSchema);
    this.t = quoteIdent(tasksSchema);
  }

  /** `<tasks>.<fn>(args)`. */
  call<R>(exec: Executor, fn: string, args: readonly Arg[], o?: CallOptions): Promise<R[]> {
    return call<R>(exec, this.t, fn, args, o);
  }

  ensureTask(
    exec: Executor,
    queue: string,
    grouped: boolean,
    byPriority: boolean,
  ): Promise<unknown> {
    return this.call(exec, 'ensure_task', [
      [queue, 'text'],
      [grouped, 'boolean'],
      [byPriority, 'boolean'],
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
    const vt = vtOfRunAt(runAt);
    for (let i = 0; ; i++) {
      const id = await this.queue.messages.sendUnlessDuplicate(exec, queue, body, headers, vt);
      if (id !== null) return { id, duplicate: false };
      if (key === undefined || i > 10)
        throw new DatabaseError(`enqueue into ${queue} inserted nothing`);
      const found = await this.findByKeys(exec, queue, [key]);
      const existing = found.get(key);
      if (existing !== undefined) return { id: existing, duplicate: true };
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
    const rows = await this.queue.messages.sendBatchUnlessDuplicate(
      exec,
      queue,
      bodies,
      headers,
      runAts.map(vtOfRunAt),
      H.idempotencyKey,
    );
    const unkeyed = rows.filter((r) => r.key === null).map((r) => r.id);
    const byKey = new Map(rows.filter((r) => r.key !== null).map((r) => [r.key!, r.id]));
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
      const found = await this.findByKeys(exec, queue, [...new Set(missing.map((i) => keys[i]!))]);
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

  private findByKeys(exec: Executor, queue: string, keys: string[]): Promise<Map<string, number>> {
    return this.queue.records.findByHeader(exec, queue, H.idempotencyKey, keys);
  }

  fetch(
    exec: Executor,
    queue: string,
    qty: number,
    leaseMs: number,
    lifo: boolean,
    grouped: boolean,
    byPriority: boolean,
    limit: number | null,
  ): Promise<MessageRow[]> {
    const args: Arg[] = [
      [queue, 'text'],
      [qty, 'integer'],
      [leaseMs, 'integer'],
      [lifo, 'boolean'],
      [grouped, 'boolean'],
      [byPriority, 'boolean'],
      [limit, 'integer'],
    ];
    return this.call<MessageRow>(exec, 'fetch', args, { select: MESSAGE_COLUMNS, prepare: true });
  }

  /** fetch() of jobs with msg_id > afterId, topped up by fetch() when short (sql/tasks/*_fetch_after.sql). */
  fetchAfter(
    exec: Executor,
    queue: string,
    qty: number,
    leaseMs: number,
    afterId: number,
  ): Promise<MessageRow[]> {
    const args: Arg[] = [
      [queue, 'text'],
      [qty, 'integer'],
      [leaseMs, 'integer'],
      [afterId, 'bigint'],
    ];
    return this.call<MessageRow>(exec, 'fetch_after', args, {
      select: MESSAGE_COLUMNS,
      prepare: true,
    });
  }

  /**
   * The worker's fetch of a plain FIFO task as a prepared statement (see
   * lease.ts): what fetch_after(queue, qty, leaseMs, afterId) returns (with
   * afterId 0, fetch()), only the columns a worker needs. null: the task is
   * rate-limited, ask the SQL function.
   */
  async fetchPlain(
    exec: Executor,
    queue: string,
    qty: number,
    leaseMs: number,
    afterId: number,
  ): Promise<JobMessage[] | null> {
    const table = this.queue.tables.cached(queue) ?? (await this.queue.tables.table(exec, queue));
    let text = this.leases.get(table);
    if (text === undefined) this.leases.set(table, (text = leaseSql(table, this.t)));
    const { rows } = await execute<LeaseRow>(exec, text, [qty, leaseMs, afterId, queue], {
      prepare: true,
    });
    if (rows.length > 0 && rows[rows.length - 1]!.msg_id === null) return null;
    return rows.map(toJobMessage);
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
    const args: Arg[] = [
      [queue, 'text'],
      [ids, 'bigint[]'],
      [readCounts, 'integer[]'],
      [archive, 'boolean'],
      [asyncCommit, 'boolean'],
      [notify, 'boolean'],
    ];
    return (await this.call(exec, 'complete', args, { prepare: true })).length;
  }

  async retry(
    exec: Executor,
    queue: string,
    id: number,
    readCount: number,
    delayMs: number,
    error: string,
  ): Promise<boolean> {
    const args: Arg[] = [
      [queue, 'text'],
      [id, 'bigint'],
      [readCount, 'integer'],
      [delayMs, 'integer'],
      [error, 'jsonb'],
    ];
    return (await this.call<{ r: boolean }>(exec, 'retry', args, { prepare: true }))[0]!.r;
  }

  async deadLetter(
    exec: Executor,
    queue: string,
    id: number,
    readCount: number,
    error: string,
  ): Promise<number | null> {
    const args: Arg[] = [
      [queue, 'text'],
      [id, 'bigint'],
      [readCount, 'integer'],
      [error, 'jsonb'],
    ];
    const rows = await this.call<{ r: string | null }>(exec, 'dead_letter', args, {
      prepare: true,
    });
    const v = rows[0]!.r;
    return v === null ? null : Number(v);
  }

  async handBack(
    exec: Executor,
    queue: string,
    ids: number[],
    readCounts: number[],
  ): Promise<number> {
    const args: Arg[] = [
      [queue, 'text'],
      [ids, 'bigint[]'],
      [readCounts, 'integer[]'],
    ];
    return (await this.call(exec, 'hand_back', args)).length;
  }

  async extend(
    exec: Executor,
    queue: string,
    ids: number[],
    readCounts: number[],
    leaseMs: number,
  ): Promise<Set<number>> {
    const args: Arg[] = [
      [queue, 'text'],
      [ids, 'bigint[]'],
      [readCounts, 'integer[]'],
      [leaseMs, 'integer'],
    ];
    const rows = await this.call<{ r: string }>(exec, 'extend', args);
    return new Set(rows.map((r) => Number(r.r)));
  }

  /**
   * Milliseconds until the queue needs a look again (null: only a
   * notification or the poll interval). Measured on the database clock, so
   * a skewed client clock cannot make a worker spin or oversleep.
   */
  async idle(exec: Executor, queue: string): Promise<number | null> {
    // Its write (the waiting flag) commits without waiting for the WAL
    // flush: a flag lost in a crash only costs a wake-up, and every worker
    // looks again when its LISTEN connection comes back.
    const rows = await this.call<{ ms: number | string | null }>(exec, 'idle', [[queue, 'text']], {
      select: '(extract(epoch FROM r - clock_timestamp()) * 1000)::float8 AS ms',
      prepare: true,
      asyncCommit: true,
    });
    const ms = rows[0]!.ms;
    return ms === null ? null : Math.max(0, Number(ms));
  }

  async cancel(
    exec: Executor,
    queue: string,
    id: number,
  ): Promise<'queued' | 'running' | 'not_found'> {
    const rows = await this.call<{ r: 'queued' | 'running' | 'not_found' }>(exec, 'cancel', [
      [queue, 'text'],
      [id, 'bigint'],
    ]);
    return rows[0]!.r;
  }
}
