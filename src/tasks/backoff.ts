import { InvalidArgumentError } from '../errors.js';

/** How long to wait before the next attempt. */
export type Backoff =
  | {
      kind: 'exponential';
      /** Delay before the 2nd attempt. Default 1000. */
      baseDelayMs?: number;
      /** Growth per attempt. Default 2. */
      factor?: number;
      /** Upper bound. Default 3,600,000 (1 h). */
      maxDelayMs?: number;
      /** Randomise each delay within [delay/2, delay] so retries of many jobs spread out. Default true. */
      jitter?: boolean;
    }
  | { kind: 'fixed'; delayMs: number }
  | ((attempt: number, error: unknown) => number);

export const DEFAULT_BACKOFF: Backoff = { kind: 'exponential' };

/** Checks a backoff once, at definition time. */
export function checkBackoff(b: Backoff): Backoff {
  if (typeof b === 'function') return b;
  const nonNeg = (what: string, v: unknown): void => {
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
      throw new InvalidArgumentError(
        `backoff.${what} must be a non-negative number, got ${String(v)}`,
      );
    }
  };
  if (b.kind === 'fixed') nonNeg('delayMs', b.delayMs);
  else if (b.kind === 'exponential') {
    nonNeg('baseDelayMs', b.baseDelayMs);
    nonNeg('maxDelayMs', b.maxDelayMs);
    if (b.factor !== undefined && (typeof b.factor !== 'number' || b.factor < 1)) {
      throw new InvalidArgumentError(
        `backoff.factor must be a number ≥ 1, got ${String(b.factor)}`,
      );
    }
  } else throw new InvalidArgumentError(`backoff.kind must be 'exponential' or 'fixed'`);
  return b;
}

/** Delay in ms before attempt `attempt + 1`, after attempt `attempt` (1-based) failed. */
export function retryDelayMs(
  b: Backoff,
  attempt: number,
  error: unknown,
  random: () => number = Math.random,
): number {
  let ms: number;
  if (typeof b === 'function') ms = b(attempt, error);
  else if (b.kind === 'fixed') ms = b.delayMs;
  else {
    const raw = Math.min(
      (b.baseDelayMs ?? 1000) * (b.factor ?? 2) ** (attempt - 1),
      b.maxDelayMs ?? 3_600_000,
    );
    ms = b.jitter === false ? raw : raw / 2 + random() * (raw / 2);
  }
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  // The SQL takes an int4 of milliseconds.
  return Math.min(Math.round(ms), 2_147_483_647);
}
