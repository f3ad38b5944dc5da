import { PgferryError } from '../errors.js';

/**
 * The embedded PostgreSQL could not be started: the optional package is
 * missing, the port or data folder is already in use, or (as root) its user
 * cannot reach the data folder. The message says what to do.
 */
export class EmbeddedPostgresError extends PgferryError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('PGFERRY_EMBEDDED_POSTGRES', message, options);
  }
}
