import { InvalidArgumentError } from '../errors.js';
import { checkNonNegative } from './validate.js';

/**
 * A duration option given in milliseconds (`…Ms`) or, for one release, by
 * its deprecated `…Seconds` alias (docs/concepts.md, "Durations"). Returns
 * milliseconds, or `fallbackMs` when neither is given; both given is an
 * InvalidArgumentError.
 */
export function durationMs<O extends object>(
  options: O,
  msName: keyof O & string,
  secondsName: keyof O & string,
  fallbackMs: number,
): number;
export function durationMs<O extends object>(
  options: O,
  msName: keyof O & string,
  secondsName: keyof O & string,
): number | null;
export function durationMs<O extends object>(
  options: O,
  msName: keyof O & string,
  secondsName: keyof O & string,
  fallbackMs: number | null = null,
): number | null {
  const ms = options[msName] as unknown;
  const seconds = options[secondsName] as unknown;
  if (ms !== undefined && seconds !== undefined) {
    throw new InvalidArgumentError(
      `give ${msName} or its deprecated alias ${secondsName}, not both`,
    );
  }
  if (ms !== undefined) return checkNonNegative(msName, ms);
  if (seconds !== undefined) return checkNonNegative(secondsName, seconds) * 1000;
  return fallbackMs;
}

/** Milliseconds as the seconds PgQue's SQL functions take (`make_interval(secs => …)`). */
export function toSeconds(ms: number | null): number | null {
  return ms === null ? null : ms / 1000;
}
