import { InvalidArgumentError } from '../errors.js';
import { checkNoNul, toJsonPayload } from '../payload.js';

/** PgQue's limit: the NOTIFY channel `pgque_<name>` must fit in 63 bytes. */
export const MAX_STREAM_NAME_BYTES = 57;

function describe(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** Stream names: non-empty strings of at most 57 bytes (UTF-8). */
export function checkStreamName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(`stream name must be a non-empty string, got ${describe(name)}`);
  }
  checkNoNul('stream name', name);
  // A UTF-16 unit is at most 3 UTF-8 bytes: short names need no count (a send's hot path).
  if (name.length * 3 <= MAX_STREAM_NAME_BYTES) return name;
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_STREAM_NAME_BYTES) {
    throw new InvalidArgumentError(
      `stream name too long: ${bytes} bytes (max ${MAX_STREAM_NAME_BYTES}); the channel pgque_<name> must fit in 63 bytes`,
    );
  }
  return name;
}

export function checkConsumerName(what: string, name: unknown, { noDot = false } = {}): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(`${what} must be a non-empty string, got ${describe(name)}`);
  }
  checkNoNul(what, name);
  if (noDot && name.includes('.')) {
    throw new InvalidArgumentError(
      `${what} must not contain a dot in cooperative mode, got ${describe(name)}`,
    );
  }
  return name;
}

export function checkPositiveInt(what: string, v: unknown, max = 2147483647): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw new InvalidArgumentError(
      `${what} must be an integer between 1 and ${max}, got ${describe(v)}`,
    );
  }
  return v;
}

export function checkNonNegative(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new InvalidArgumentError(`${what} must be a non-negative number, got ${describe(v)}`);
  }
  return v;
}

/** Stream payloads follow the one JSON rule of payload.ts. */
export const toJsonText = toJsonPayload;
