import { InvalidArgumentError } from '../../errors.js';
import { durationMs, wholeSeconds } from '../durations.js';
import { checkDate, checkInt } from '../validate.js';

/**
 * When a message becomes visible: `seconds` or `ms` from the database clock,
 * or an absolute time. The one visibility-time type of the engine (send,
 * send batch, set_vt if held, tasks' enqueue).
 */
export type VtSpec =
  { kind: 'seconds'; value: number } | { kind: 'ms'; value: number } | { kind: 'at'; value: Date };

/** No delay is the common case: plain clock_timestamp(), one parameter fewer. */
export const isNow = (vt: VtSpec): boolean => vt.kind !== 'at' && vt.value === 0;

/** The SQL expression of `vt`, its value bound as parameter `$param` (none when it is now). */
export function vtSql(vt: VtSpec, param: number): string {
  if (isNow(vt)) return 'clock_timestamp()';
  if (vt.kind === 'at') return `$${param}::timestamptz`;
  return vt.kind === 'seconds'
    ? `clock_timestamp() + make_interval(secs => $${param}::integer)`
    : `clock_timestamp() + make_interval(secs => $${param}::float8 / 1000)`;
}

/** `params` with the value of `vt` appended when `vtSql` binds one. */
export function vtParams(params: unknown[], vt: VtSpec): unknown[] {
  return isNow(vt) ? params : [...params, vt.value];
}

/**
 * `vt` as the argument of a PGMQ function, `[value, SQL type]`: an absolute
 * time, or whole seconds from now (milliseconds rounded up).
 */
export function vtArg(vt: VtSpec): readonly [number | Date, 'integer' | 'timestamptz'] {
  if (vt.kind === 'at') return [vt.value, 'timestamptz'];
  return [vt.kind === 'ms' ? wholeSeconds(vt.value) : vt.value, 'integer'];
}

/** A vt given as seconds from now or a Date (set_vt's argument), checked. */
export function vtOfValue(name: string, vt: number | Date): VtSpec {
  return vt instanceof Date
    ? { kind: 'at', value: checkDate(name, vt) }
    : { kind: 'seconds', value: checkInt(name, vt) };
}

/** The vt of a send: `delayMs` (or the deprecated `delaySeconds`) or `deliverAt`, not both; checked. */
export function vtOf(options: {
  delayMs?: number;
  delaySeconds?: number;
  deliverAt?: Date;
}): VtSpec {
  const delay = durationMs(options, 'delayMs', 'delaySeconds');
  if (options.deliverAt !== undefined) {
    if (delay !== undefined) throw new InvalidArgumentError('give delayMs or deliverAt, not both');
    return { kind: 'at', value: checkDate('deliverAt', options.deliverAt) };
  }
  if (options.delaySeconds !== undefined) return { kind: 'seconds', value: options.delaySeconds };
  return { kind: 'ms', value: delay ?? 0 };
}

const DEFAULT_VT_MS = 30_000;

/** A read's visibility timeout in ms: `visibilityTimeoutMs` or the deprecated `…Seconds`. */
export function visibilityMs(
  options: { visibilityTimeoutMs?: number; visibilityTimeoutSeconds?: number },
  defaultMs = DEFAULT_VT_MS,
): number {
  return (
    durationMs(options, 'visibilityTimeoutMs', 'visibilityTimeoutSeconds', { min: 0 }) ?? defaultMs
  );
}

/**
 * The vt argument of a read (`visibilityTimeoutMs` — PGMQ counts whole
 * seconds, so it is rounded up — or `visibleUntil`, not both) as
 * `[value, SQL type]`: the read functions take either type.
 */
export function readVt(options: {
  visibilityTimeoutMs?: number;
  visibilityTimeoutSeconds?: number;
  visibleUntil?: Date;
}): readonly [number | Date, 'integer' | 'timestamptz'] {
  if (options.visibleUntil !== undefined) {
    if (
      options.visibilityTimeoutMs !== undefined ||
      options.visibilityTimeoutSeconds !== undefined
    ) {
      throw new InvalidArgumentError('give visibilityTimeoutMs or visibleUntil, not both');
    }
    return [checkDate('visibleUntil', options.visibleUntil), 'timestamptz'];
  }
  const ms =
    durationMs(options, 'visibilityTimeoutMs', 'visibilityTimeoutSeconds') ?? DEFAULT_VT_MS;
  return [checkInt('visibilityTimeoutMs', wholeSeconds(ms)), 'integer'];
}
