/**
 * Errors of the stream layer. The engine raises what PgQue raises (P0001 with
 * PgQue's wording, 42501 for a missing role), so other languages' clients see
 * the same errors; here they become classes with stable codes. pgferry's own
 * additions raise SQLSTATEs in the PF400–PF499 block.
 */
import { PgferryError, mapError, registerSqlState } from '../errors.js';

type ErrorOptions = { cause?: unknown; sqlState?: string };

/** A stream-layer error whose class names its stable code (`static code`). */
abstract class StreamError extends PgferryError {
  constructor(message: string, options: ErrorOptions = {}) {
    super((new.target as unknown as { code: string }).code, message, options);
  }
}

/** The stream (PgQue "queue") does not exist. */
export class StreamNotFoundError extends StreamError {
  static readonly code = 'PGFERRY_STREAM_NOT_FOUND';
}

/** The consumer is not subscribed to the stream (or the stream is unknown). */
export class NotSubscribedError extends StreamError {
  static readonly code = 'PGFERRY_NOT_SUBSCRIBED';
}

/** The batch id is not an active batch (finished, unknown, or taken over). */
export class BatchNotFoundError extends StreamError {
  static readonly code = 'PGFERRY_BATCH_NOT_FOUND';
}

/** The role lacks the pgque_reader / pgque_writer / pgque_admin grant (SQLSTATE 42501). */
export class PermissionDeniedError extends StreamError {
  static readonly code = 'PGFERRY_PERMISSION_DENIED';
}

/** A cooperative-consumer rule was broken (wrong API for the row's role, active member, …). */
export class CooperativeConsumerError extends StreamError {
  static readonly code = 'PGFERRY_COOPERATIVE_CONSUMER';
}

/** `ack` returned 0: the batch is no longer this consumer's (finished elsewhere or taken over). */
export class StaleBatchError extends PgferryError {
  constructor(readonly batchId: number) {
    super(
      'PGFERRY_STALE_BATCH',
      `batch ${batchId} was already finished or taken over; its handlers' writes were rolled back`,
    );
  }
}

/** PF401: a pgferry addition (request_tick) was given an unknown stream. */
registerSqlState('PF401', (message, options) => new StreamNotFoundError(message, options));

const RULES: [RegExp, new (message: string, options: ErrorOptions) => PgferryError][] = [
  [
    /^(queue not found: |No such event queue$|no such queue$|Event queue not created yet$)/,
    StreamNotFoundError,
  ],
  [/^Not subscriber to queue: /, NotSubscribedError],
  [/^(batch not found|batch_retry: batch \d+ not found)/, BatchNotFoundError],
  [
    /cooperative (main consumer|subconsumer)|already a normal consumer|cannot convert active normal consumer/,
    CooperativeConsumerError,
  ],
];

/** Maps a driver or database error to the stream layer's classes (idempotent). */
export function mapStreamError(err: unknown): unknown {
  const mapped = mapError(err);
  if (!(mapped instanceof PgferryError)) return mapped;
  if (mapped.sqlState === '42501') {
    return new PermissionDeniedError(mapped.message, { cause: mapped, sqlState: '42501' });
  }
  if (mapped.sqlState !== 'P0001') return mapped;
  for (const [re, Class] of RULES) {
    if (re.test(mapped.message))
      return new Class(mapped.message, { cause: mapped, sqlState: 'P0001' });
  }
  return mapped;
}
