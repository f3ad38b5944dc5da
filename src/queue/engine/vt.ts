import { InvalidArgumentError } from '../../errors.js';
import { checkDate, checkInt } from '../validate.js';

/**
 * When a message becomes visible: `seconds` or `ms` from the database clock,
 * or an absolute time. The one visibility-time type of the engine (send,
 * send batch, set_vt if held, tasks' enqueue).
 */
export type VtSpec =
  { kind: 'seconds'; value: number } | { kind: 'ms'; value: number } | { kind: 'at'; value: Date };

/** No delay is the common case: plain clock_timestamp(), one parameter fewer. */
const isNow = (vt: VtSpec): boolean => vt.kind !== 'at' && vt.value === 0;

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

/** A vt given as seconds from now or a Date (set_vt's argument), checked. */
export function vtOfValue(name: string, vt: number | Date): VtSpec {
  return vt instanceof Date
    ? { kind: 'at', value: checkDate(name, vt) }
    : { kind: 'seconds', value: checkInt(name, vt) };
}

/** The vt of a send: `delaySeconds` or `deliverAt` (not both), checked. */
export function vtOf(options: { delaySeconds?: number; deliverAt?: Date }): VtSpec {
  if (options.deliverAt !== undefined) {
    if (options.delaySeconds !== undefined)
      throw new InvalidArgumentError('give delaySeconds or deliverAt, not both');
    return { kind: 'at', value: checkDate('deliverAt', options.deliverAt) };
  }
  return { kind: 'seconds', value: checkInt('delaySeconds', options.delaySeconds ?? 0) };
}

const DEFAULT_VT_SECONDS = 30;

/**
 * The vt argument of a read (`visibilityTimeoutSeconds` or `visibleUntil`,
 * not both) as `[value, SQL type]`: the read functions take either type.
 */
export function readVt(options: {
  visibilityTimeoutSeconds?: number;
  visibleUntil?: Date;
}): readonly [number | Date, 'integer' | 'timestamptz'] {
  if (options.visibleUntil !== undefined) {
    if (options.visibilityTimeoutSeconds !== undefined) {
      throw new InvalidArgumentError('give visibilityTimeoutSeconds or visibleUntil, not both');
    }
    return [checkDate('visibleUntil', options.visibleUntil), 'timestamptz'];
  }
  const seconds = options.visibilityTimeoutSeconds ?? DEFAULT_VT_SECONDS;
  return [checkInt('visibilityTimeoutSeconds', seconds), 'integer'];
}
