import { InvalidArgumentError, PgferryError, registerSqlState } from '../errors.js';

/**
 * The queue is not a member of the channel: it left, was reaped after its
 * lease ran out, belongs to another channel, or never existed (the SQL says
 * the same for all of these, so callers learn nothing about others' queues).
 * SQLSTATE PF502.
 */
export class BusNotMemberError extends PgferryError {
  constructor(message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super('PGFERRY_BUS_NOT_A_MEMBER', message, options);
  }
}

/**
 * bus_join refused: a cap was reached (members per channel, members per
 * role, joins per minute or per transaction; see docs/security.md). Nothing
 * was created. SQLSTATE PF503.
 */
export class BusLimitError extends PgferryError {
  constructor(message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super('PGFERRY_BUS_LIMIT', message, options);
  }
}

// pgferry's bus SQLSTATEs (block PF500–PF599): PF501 bad argument, PF502 not a member,
// PF503 a bus_join cap was reached.
registerSqlState('PF501', (message, options) => new InvalidArgumentError(message, options));
registerSqlState('PF502', (message, options) => new BusNotMemberError(message, options));
registerSqlState('PF503', (message, options) => new BusLimitError(message, options));
