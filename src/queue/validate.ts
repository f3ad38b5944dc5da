import { InvalidArgumentError, InvalidQueueNameError } from '../errors.js';
import { toJsonPayload } from '../payload.js';

/** PGMQ's limit on queue names (characters). */
export const MAX_QUEUE_NAME_LENGTH = 47;
/**
 * The same limit in UTF-8 bytes, as the SQL `create` enforces it: every
 * derived identifier (`q_<name>_msg_id_seq`, the archive's indexes) must fit
 * PostgreSQL's 63 bytes untruncated. ASCII names never reach it before the
 * 47-character rule.
 */
export const MAX_QUEUE_NAME_BYTES = 47;

/**
 * Checks a queue name in TypeScript before anything is sent, with PGMQ's
 * rules and wording (the SQL checks again). pgferry's client additionally
 * refuses non-strings and the empty name, which PGMQ's SQL accepts.
 */
export function checkQueueName(name: unknown, { forCreate = false } = {}): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidQueueNameError(`queue name must be a non-empty string, got ${describe(name)}`);
  }
  if (name.includes('\u0000')) {
    throw new InvalidQueueNameError('queue name contains a NUL character (\\u0000)');
  }
  if (/\$|;|--|'/.test(name)) {
    throw new InvalidQueueNameError("queue name contains invalid characters: $, ;, --, or \\'");
  }
  if (forCreate && [...name].length > MAX_QUEUE_NAME_LENGTH) {
    throw new InvalidQueueNameError(
      `queue name is too long, maximum length is ${MAX_QUEUE_NAME_LENGTH} characters`,
    );
  }
  if (forCreate && Buffer.byteLength(name, 'utf8') > MAX_QUEUE_NAME_BYTES) {
    throw new InvalidQueueNameError(
      `queue name is too long: ${Buffer.byteLength(name, 'utf8')} bytes in UTF-8, maximum ${MAX_QUEUE_NAME_BYTES} (PostgreSQL identifiers are 63 bytes)`,
    );
  }
  return name;
}

const INT4_MAX = 2147483647;

export function checkInt(
  what: string,
  value: unknown,
  { min = -INT4_MAX - 1, max = INT4_MAX }: { min?: number; max?: number } = {},
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(
      `${what} must be an integer between ${min} and ${max}, got ${describe(value)}`,
    );
  }
  return value;
}

export function checkDate(what: string, value: unknown): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new InvalidArgumentError(`${what} must be a valid Date, got ${describe(value)}`);
  }
  return value;
}

export function checkMsgIds(ids: unknown): number[] {
  if (!Array.isArray(ids))
    throw new InvalidArgumentError(`message ids must be an array, got ${describe(ids)}`);
  return ids.map((id) => checkMsgId(id));
}

export function checkMsgId(id: unknown): number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
    throw new InvalidArgumentError(`a message id must be a safe integer, got ${describe(id)}`);
  }
  return id;
}

/** Serialises a message or headers object to JSON text for a jsonb parameter (see payload.ts). */
export const toJson = toJsonPayload;

export function describe(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? value.slice(0, 60) + '…' : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null)
    return String(value);
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

/**
 * The JSON texts of a batch send: one body per message (at least one), and
 * one headers object or null per message when headers are given (as many as
 * messages). Used by send_batch and send_batch_topic.
 */
export function encodeBatch(
  messages: readonly unknown[],
  headers: readonly (Record<string, unknown> | null | undefined)[] | undefined,
): { bodies: string[]; headers: (string | null)[] | null } {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new InvalidArgumentError('msgs cannot be NULL or empty');
  }
  const bodies = messages.map((m, i) => toJson(`messages[${i}]`, m));
  if (!headers) return { bodies, headers: null };
  if (headers.length !== messages.length) {
    throw new InvalidArgumentError(
      `headers array length (${headers.length}) must match msgs array length (${messages.length})`,
    );
  }
  return {
    bodies,
    headers: headers.map((h, i) => (h == null ? null : toJson(`headers[${i}]`, h))),
  };
}
