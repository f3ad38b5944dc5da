import { InvalidArgumentError } from './errors.js';

/**
 * The one JSON rule for everything pgferry stores as jsonb (queue messages
 * and headers, task inputs, stream payloads): checked in TypeScript before
 * anything is sent, so a refused value never reaches the database.
 *
 * - `undefined` and values JSON cannot represent are refused.
 * - `NaN`, `Infinity` and `-Infinity` are refused: `JSON.stringify` would
 *   silently store them as `null` (a different message from the one sent).
 * - A NUL character (`\u0000`) in any string or key is refused: jsonb cannot
 *   store it (PostgreSQL raises 22P05).
 * - JSON text over PostgreSQL's jsonb limit (256 MB) is refused (54000).
 */

/** PostgreSQL's jsonb size limit, in bytes (JENTRY_OFFLENMASK). */
export const MAX_JSON_BYTES = 0x0fffffff;

/** An escaped NUL that is not itself an escaped backslash followed by `u0000`. */
const ESCAPED_NUL = /(?:^|[^\\])(?:\\\\)*\\u0000/;

/** Serialises `value` to JSON text for a jsonb parameter, or throws InvalidArgumentError naming `what`. */
export function toJsonPayload(what: string, value: unknown): string {
  if (value === undefined) {
    throw new InvalidArgumentError(`${what} must not be undefined (use null)`);
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new InvalidArgumentError(`${what} is not JSON-serialisable: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (text === undefined) {
    throw new InvalidArgumentError(`${what} is not JSON-serialisable (${typeof value})`);
  }
  // Non-finite numbers serialise as null: only text containing null can hide one.
  if (text.includes('null')) {
    const where = findNonFinite(value, what);
    if (where) {
      throw new InvalidArgumentError(
        `${where} is NaN or ±Infinity, which JSON cannot represent (it would be stored as null)`,
      );
    }
  }
  if (text.includes('\\u0000') && ESCAPED_NUL.test(text)) {
    throw new InvalidArgumentError(
      `${what} contains a NUL character (\\u0000), which PostgreSQL's jsonb cannot store`,
    );
  }
  // A UTF-16 length over the limit is certainly over it in bytes; counting bytes costs a pass.
  if (text.length > MAX_JSON_BYTES / 3 && Buffer.byteLength(text, 'utf8') > MAX_JSON_BYTES) {
    throw new InvalidArgumentError(
      `${what} is over PostgreSQL's jsonb limit of ${MAX_JSON_BYTES} bytes as JSON text`,
    );
  }
  return text;
}

/** Throws when a text argument (a name, an idempotency key) contains NUL, which text columns cannot store. */
export function checkNoNul(what: string, text: string): string {
  if (text.includes('\u0000')) {
    throw new InvalidArgumentError(
      `${what} contains a NUL character (\\u0000), which PostgreSQL text cannot store`,
    );
  }
  return text;
}

/** The path of the first non-finite number in `value` (as JSON.stringify walks it), if any. */
function findNonFinite(value: unknown, path: string, seen = new Set<object>()): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path;
  if (typeof value !== 'object' || value === null || seen.has(value)) return undefined;
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    return findNonFinite((toJSON as () => unknown).call(value), path, seen);
  }
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = findNonFinite(value[i], `${path}[${i}]`, seen);
      if (hit) return hit;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    const hit = findNonFinite(v, `${path}.${k}`, seen);
    if (hit) return hit;
  }
  return undefined;
}
