import { execute, type Executor } from '../../driver/types.js';
import { explainLock } from '../../errors.js';
import { lockGuardFrom, withLockParam } from '../lock-timeout.js';
import { ASYNC_COMMIT } from '../../driver/pooler.js';

/**
 * A FROM item that makes the statement's transaction commit without waiting
 * for the WAL flush (`synchronous_commit = off`, for this transaction only).
 * For operations whose loss in a crash only redelivers a message (the bus's
 * reads and archives, its publish when the caller opts out of durability).
 */
export { ASYNC_COMMIT };

/** One argument of a SQL-function call: its value and its SQL type. */
export type Arg = readonly [value: unknown, type: string];

export interface CallOptions {
  /**
   * The select list over the call (default `*`). A function returning a
   * scalar yields one column named `r`; one returning rows yields its columns.
   */
  select?: string;
  /** Prepare the statement on the connection (hot paths). */
  prepare?: boolean;
  /** A long-poll waits in the database on purpose: extend the query deadline by it. */
  timeoutExtraMs?: number;
  /** Commit without waiting for the WAL flush (see ASYNC_COMMIT). */
  asyncCommit?: boolean;
  /**
   * Bound the wait for another transaction's lock (lock-timeout.ts): the
   * function runs after a one-row guard that sets lock_timeout. With
   * `composite`, the function returns rows of a type whose fields `select`
   * names (they are then read from the guarded call's result).
   */
  lockTimeoutMs?: number;
  composite?: boolean;
  /** What a lock timeout waited for, named in the LockTimeoutError. */
  locked?: Locked;
}

/** What a lock timeout waited for; a function when naming it costs (a batch's ids), called only then. */
export type Locked = string | (() => string);

/** `$from::t1, $from+1::t2, …` */
export const placeholders = (args: readonly Arg[], from = 1): string =>
  args.map(([, type], i) => `$${i + from}::${type}`).join(', ');

/**
 * The SQL text of a call: `SELECT <select> FROM <s>.<fn>(<args>) AS r`, or
 * with the lock guard, the call in the select list of a subquery fenced
 * after the guard (so lock_timeout is set before the function runs).
 */
export function callText(s: string, fn: string, args: readonly Arg[], o: CallOptions = {}): string {
  const select = o.select ?? '*';
  const call = `${s}.${fn}(${placeholders(args)})`;
  const ms = o.lockTimeoutMs ?? 0;
  if (ms > 0) {
    const outer = o.composite
      ? select
          .split(', ')
          .map((c) => `(x.r).${c}`)
          .join(', ')
      : select;
    return `SELECT ${outer} FROM (SELECT ${call} AS r${lockGuardFrom(ms, args.length + 1)} OFFSET 0) AS x`;
  }
  return `SELECT ${select} FROM ${o.asyncCommit ? `${ASYNC_COMMIT}, ` : ''}${call} AS r`;
}

/**
 * Runs one statement of the queue engine and returns its rows: the one place
 * where queue statements meet the driver (prepare, deadlines, lock-timeout
 * error naming). SQL errors are already PgferryErrors (the driver maps them).
 */
export async function run<R>(
  exec: Executor,
  text: string,
  params: readonly unknown[],
  o: Pick<CallOptions, 'prepare' | 'timeoutExtraMs' | 'locked'> = {},
): Promise<R[]> {
  try {
    const res = await execute<R>(exec, text, params, {
      prepare: o.prepare ?? false,
      timeoutExtraMs: o.timeoutExtraMs ?? 0,
    });
    return res.rows;
  } catch (err) {
    if (o.locked === undefined) throw err;
    throw explainLock(err, typeof o.locked === 'function' ? o.locked() : o.locked);
  }
}

/** Calls `<s>.<fn>(args)` (see callText) and returns its rows. */
export function call<R>(
  exec: Executor,
  s: string,
  fn: string,
  args: readonly Arg[],
  o: CallOptions = {},
): Promise<R[]> {
  const values = args.map(([v]) => v);
  const params = o.lockTimeoutMs ? withLockParam(o.lockTimeoutMs, values) : values;
  return run<R>(exec, callText(s, fn, args, o), params, o);
}

/** How a LockTimeoutError names the message(s) it waited for. */
export function lockedMessages(queue: string, ids: readonly number[]): string {
  const which = ids.length === 1 ? `message ${ids[0]}` : `one of messages ${ids.join(', ')}`;
  return `${which} of queue "${queue}"`;
}
