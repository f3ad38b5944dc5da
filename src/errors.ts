/**
 * Every error pgferry throws is a PgferryError with a stable `code`. Errors
 * raised by the SQL engines are mapped from their SQLSTATE (and, inside the
 * PGMQ API, which only ever raises P0001, from PGMQ's message wording).
 * The original driver error is kept as `cause`. See docs/errors.md.
 */
export class PgferryError extends Error {
  /** Stable machine-readable code, e.g. `PGFERRY_QUEUE_NOT_FOUND`. */
  readonly code: string;
  /** The SQLSTATE when the error came from the database. */
  readonly sqlState: string | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.sqlState = options.sqlState;
  }
}

/** A statement failed in the database for a reason without a more specific class. */
export class DatabaseError extends PgferryError {
  constructor(message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super('PGFERRY_DATABASE', message, options);
  }
}

/** The queue (its table) does not exist. SQLSTATE 42P01 on a `q_`/`a_` table. */
export class QueueNotFoundError extends PgferryError {
  constructor(message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super('PGFERRY_QUEUE_NOT_FOUND', message, options);
  }
}

/** A queue name PGMQ's rules refuse (`$ ; -- '`, longer than 47 characters, NULL). */
export class InvalidQueueNameError extends PgferryError {
  constructor(message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super('PGFERRY_INVALID_QUEUE_NAME', message, options);
  }
}

/** A bad argument: caught in TypeScript before anything is sent, or refused by the SQL. */
export class InvalidArgumentError extends PgferryError {
  constructor(message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super('PGFERRY_INVALID_ARGUMENT', message, options);
  }
}

/** The database could not be reached, or the connection was lost. */
export class ConnectionError extends PgferryError {
  constructor(message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super('PGFERRY_CONNECTION', message, options);
  }
}

/**
 * A deadline passed: the client-side query timeout (`queryTimeoutMs`), or the
 * server's `statement_timeout` (SQLSTATE 57014). The connection the statement
 * ran on is discarded; nothing the statement did was committed unless the
 * caller's own COMMIT had already been acknowledged.
 */
export class TimeoutError extends PgferryError {
  constructor(message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super('PGFERRY_TIMEOUT', message, options);
  }
}

/**
 * A row or table lock was not granted within `lock_timeout` (SQLSTATE 55P03):
 * another transaction holds the message (delete, archive, set_vt) or the
 * queue (purge, drop). Nothing was changed; retry once the other transaction
 * has ended.
 */
export class LockTimeoutError extends PgferryError {
  constructor(message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super('PGFERRY_LOCK_TIMEOUT', message, options);
  }
}

/**
 * The transaction lost a conflict with a concurrent one and was rolled back
 * by the server: a deadlock (SQLSTATE 40P01) or a serialization failure
 * (40001, under REPEATABLE READ / SERIALIZABLE). Nothing it did was kept;
 * running the whole transaction again is safe and usually succeeds.
 */
export class ConflictError extends PgferryError {
  constructor(message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super('PGFERRY_CONFLICT', message, options);
  }
}

export type MigrationErrorCode =
  | 'PGFERRY_SCHEMA_TOO_NEW'
  | 'PGFERRY_POSTGRES_TOO_OLD'
  | 'PGFERRY_EXTENSION_CONFLICT'
  | 'PGFERRY_FOREIGN_SCHEMA'
  | 'PGFERRY_MIGRATION_FAILED';

/** The migrator refused to run or a migration failed (nothing half-applied). */
export class MigrationError extends PgferryError {
  declare readonly code: MigrationErrorCode;
  constructor(code: MigrationErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}

/** The operation was aborted through its AbortSignal. */
export class AbortedError extends PgferryError {
  constructor(message = 'the operation was aborted', options: { cause?: unknown } = {}) {
    super('PGFERRY_ABORTED', message, options);
  }
}

type ErrorFactory = (
  message: string,
  options: { cause: unknown; sqlState: string },
) => PgferryError;

/**
 * pgferry's own SQLSTATEs (class `PF`), registered by the layers that raise
 * them, so mapError stays the single place errors are translated.
 */
const ownStates = new Map<string, ErrorFactory>();
export function registerSqlState(sqlState: string, factory: ErrorFactory): void {
  ownStates.set(sqlState, factory);
}

interface DriverErrorShape {
  code?: unknown;
  message?: unknown;
}

/** Re-throws a LockTimeoutError with a message naming what was locked (other errors unchanged). */
export function explainLock(err: unknown, what: string): unknown {
  if (!(err instanceof LockTimeoutError)) return err;
  return new LockTimeoutError(
    `${what} is locked by another transaction (lock_timeout passed): ${err.message}`,
    { cause: err.cause ?? err, ...(err.sqlState ? { sqlState: err.sqlState } : {}) },
  );
}

/** SQLSTATEs a caller's argument provokes, and what the argument was. */
const ARGUMENT_STATES: Record<string, string> = {
  '22P05': 'a JSON value contains a NUL character (\\u0000), which jsonb cannot store',
  '22021': 'a text argument contains a NUL character or bytes invalid in the server encoding',
  '54000':
    'an argument is over a PostgreSQL size limit (256 MB per JSON value, ~2.7 kB per index entry)',
  '42809': "a queue name is over PostgreSQL's 63-byte identifier limit once prefixed",
  '22003': 'a number is out of range',
};

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
]);

/** Translates a driver error into a PgferryError (idempotent). */
export function mapError(err: unknown): unknown {
  if (err instanceof PgferryError || typeof err !== 'object' || err === null) return err;
  const { code, message } = err as DriverErrorShape;
  const text = typeof message === 'string' ? message : String(err);
  if (typeof code !== 'string') {
    if (/^Query read timeout$/.test(text)) {
      return new TimeoutError(
        'the query did not answer within queryTimeoutMs (Query read timeout)',
        {
          cause: err,
        },
      );
    }
    if (
      /Connection terminated|connection timeout|timeout exceeded when trying to connect|^timeout expired$|Client has encountered a connection error/i.test(
        text,
      )
    ) {
      return new ConnectionError(text, { cause: err });
    }
    return err;
  }
  if (CONNECTION_CODES.has(code)) return new ConnectionError(text, { cause: err });
  if (!/^[0-9A-Z]{5}$/.test(code)) return err;
  const options = { cause: err, sqlState: code };
  const own = ownStates.get(code);
  if (own) return own(text, options);
  switch (code) {
    case '42P01':
      if (/relation "[^"]*\.?[qa]_/.test(text)) return new QueueNotFoundError(text, options);
      return new DatabaseError(text, options);
    case '22004':
      return new InvalidQueueNameError(text, options);
    case '57014':
      return new TimeoutError(
        `statement cancelled (statement_timeout or a cancel request): ${text}`,
        options,
      );
    case '55P03':
      return new LockTimeoutError(text, options);
    case '40P01':
    case '40001':
      return new ConflictError(
        `the transaction was rolled back after a conflict with a concurrent one (retry it): ${text}`,
        options,
      );
    case '42809':
      // A queue name whose q_/a_ objects were truncated to 63 bytes and collided.
      if (/"[qa]_/.test(text)) {
        return new InvalidQueueNameError(`${ARGUMENT_STATES[code]}: ${text}`, options);
      }
      return new DatabaseError(text, options);
    case '22P05':
    case '22021':
    case '54000':
    case '22003':
      return new InvalidArgumentError(`${ARGUMENT_STATES[code]}: ${text}`, options);
    case '2201W':
    case '23502':
    case '22P02':
    case '22007':
    case '22008':
    case '22023':
    case '42725':
      return new InvalidArgumentError(text, options);
    case 'P0001':
      if (/^queue name /.test(text)) return new InvalidQueueNameError(text, options);
      if (/does not exist\. Create/.test(text)) return new QueueNotFoundError(text, options);
      return new InvalidArgumentError(text, options);
    default:
      if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') {
        return new ConnectionError(text, options);
      }
      return new DatabaseError(text, options);
  }
}

// Queue reliability (partitions, dead letters, retention, fast metrics):
// SQLSTATE block PF200–PF299, raised by sql/queue/0003_reliability.sql.
registerSqlState('PF201', (message, options) => new InvalidArgumentError(message, options));
registerSqlState('PF202', (message, options) => new QueueNotFoundError(message, options));
