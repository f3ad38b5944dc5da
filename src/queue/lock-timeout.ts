import { InvalidArgumentError } from '../errors.js';

/**
 * `lock_timeout` for the queue operations that wait on a lock another
 * transaction holds: delete, archive and set_vt on a message (row lock),
 * purge and drop on a queue (table lock). Without it they wait forever, and a
 * waiting DROP makes every later read and send of the queue wait behind it.
 *
 * Set per statement with `set_config(…, true)` rather than a session SET, so
 * nothing leaks into a pooled connection (PgBouncer in transaction mode).
 * Alone, a statement is its own transaction and the setting ends with it;
 * inside the caller's transaction it lasts until that transaction ends.
 */
export const DEFAULT_LOCK_TIMEOUT_MS = 5000;

export function checkLockTimeout(value: number | undefined): number {
  if (value === undefined) return DEFAULT_LOCK_TIMEOUT_MS;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new InvalidArgumentError(
      `lockTimeoutMs must be a non-negative integer (milliseconds, 0 disables), got ${String(value)}`,
    );
  }
  return value;
}

/** The value bound to the guard's parameter (`lock_timeout` in ms). */
export const lockTimeoutParam = (ms: number): string => String(ms);

/**
 * A WHERE condition that sets lock_timeout from parameter `$n`. It is
 * evaluated on a candidate row before the row's lock is requested, so the
 * wait is bounded. Empty when lock timeouts are off.
 */
export function lockGuardWhere(ms: number, n: number): string {
  return ms > 0
    ? ` AND (SELECT pg_catalog.set_config('lock_timeout', $${n}::text, true)) IS NOT NULL`
    : '';
}

/**
 * A one-row FROM item that sets lock_timeout from `$n`; a function called in
 * the select list above it runs after it (OFFSET 0 keeps it from being
 * flattened into that select list). Empty when lock timeouts are off.
 */
export function lockGuardFrom(ms: number, n: number): string {
  return ms > 0
    ? ` FROM (SELECT pg_catalog.set_config('lock_timeout', $${n}::text, true) AS lt OFFSET 0) AS _pf_lock`
    : '';
}

/** The parameters with the lock_timeout value appended when the guard is on. */
export function withLockParam(ms: number, params: unknown[]): unknown[] {
  return ms > 0 ? [...params, lockTimeoutParam(ms)] : params;
}
