import { InvalidArgumentError } from '../errors.js';
import { checkInt } from './validate.js';

const INT4_MAX = 2147483647;

/**
 * Durations (docs/concepts.md, "Durations"): every TypeScript option is in
 * milliseconds (`…Ms`); the `…Seconds` names that shipped stay one release
 * as deprecated aliases. Reads one option of `options`, given as `msKey` or
 * as `secondsKey` (not both: InvalidArgumentError), as milliseconds,
 * checked against `min` (ms) and `maxSeconds`; undefined when neither is
 * given.
 */
export function durationMs<O extends object>(
  options: O,
  msKey: keyof O & string,
  secondsKey: keyof O & string,
  range: { min?: number; maxSeconds?: number } = {},
): number | undefined {
  const ms = options[msKey] as unknown;
  const seconds = options[secondsKey] as unknown;
  if (ms !== undefined && seconds !== undefined) {
    throw new InvalidArgumentError(`give ${msKey} or ${secondsKey} (deprecated), not both`);
  }
  const maxSeconds = range.maxSeconds ?? INT4_MAX;
  const minMs = range.min ?? -(INT4_MAX + 1) * 1000;
  if (ms !== undefined) return checkInt(msKey, ms, { min: minMs, max: maxSeconds * 1000 });
  if (seconds === undefined) return undefined;
  return checkInt(secondsKey, seconds, { min: Math.ceil(minMs / 1000), max: maxSeconds }) * 1000;
}

/**
 * Whole seconds for a PGMQ argument that counts seconds (a read's
 * visibility timeout, a long-poll's wait, a topic send's delay): rounded up,
 * so a message is never hidden or delayed for less than asked.
 */
export const wholeSeconds = (ms: number): number => Math.ceil(ms / 1000);
