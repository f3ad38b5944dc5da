import { ConnectionError } from '../errors.js';
import type { Logger } from '../logger.js';

/** The pooler between pgferry and PostgreSQL (docs/deployment.md). */
export type PoolerMode = 'transaction' | 'session' | 'none';

/** The pooler options every driver and client made from a URL accepts. */
export interface PoolerOptions {
  /**
   * The pooler in front of the database. 'transaction' (PgBouncer's
   * transaction mode and similar): no named prepared statements, and LISTEN
   * only through `listenConnectionString` (without it, wake-ups fall back to
   * polling, with one warning). 'session' and 'none' (default) need nothing.
   */
  pooler?: PoolerMode;
  /** A direct (unpooled) URL for LISTEN when `pooler` is 'transaction'. */
  listenConnectionString?: string;
}

/**
 * LISTEN through a transaction pooler registers on a server session that then
 * serves other clients and never delivers here: refuse it, warning once.
 */
export class ListenGuard {
  private warned = false;
  readonly unavailable: boolean;

  constructor(
    options: PoolerOptions,
    private readonly logger: Logger,
  ) {
    this.unavailable = options.pooler === 'transaction' && !options.listenConnectionString;
  }

  /** The error to reject a listen() with, or undefined when LISTEN may go ahead. */
  refusal(): ConnectionError | undefined {
    if (!this.unavailable) return undefined;
    if (!this.warned) {
      this.warned = true;
      this.logger.warn(
        {},
        'pgferry: pooler "transaction" without listenConnectionString: LISTEN is off, wake-ups fall back to polling',
      );
    }
    const err = new ConnectionError(
      'LISTEN is not available through a transaction-mode pooler: pass listenConnectionString (a direct URL)',
    );
    refusals.add(err);
    return err;
  }
}

const refusals = new WeakSet<object>();

/** True for the error a driver's listen() rejects with behind a transaction pooler (poll instead). */
export function isListenRefused(err: unknown): boolean {
  return typeof err === 'object' && err !== null && refusals.has(err);
}

/**
 * A FROM item that turns synchronous_commit off for the statement's own
 * (autocommit) transaction only: never a session SET, which a pooler would
 * hand on to other clients with the server session.
 */
export const ASYNC_COMMIT = `set_config('synchronous_commit', 'off', true) AS _async_commit`;
