import type { NotificationHandler, Subscription } from './types.js';
import { quoteIdent } from './quote.js';
import { ConnectionError } from '../errors.js';
import { Recovery, retryPolicy } from '../health.js';
import type { Logger } from '../logger.js';

/** Longest wait between LISTEN reconnection attempts. */
const MAX_RECONNECT_DELAY_MS = 5000;

/**
 * The LISTEN side of a driver: one dedicated connection carrying every
 * LISTEN, never a pooled query connection. It opens lazily, re-issues the
 * LISTENs after the connection is lost (back-off with jitter from
 * `reconnectDelayMs` up to 5 s; logged once when lost and once when back),
 * and then wakes every handler once with an undefined payload
 * (notifications sent meanwhile are gone, so consumers re-check at once). Drivers supply how to open, use and end a connection of their
 * client library.
 */
export abstract class DedicatedListener<C> {
  private conn: C | undefined;
  private opening: Promise<C> | undefined;
  private readonly handlers = new Map<string, Set<NotificationHandler>>();
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly recovery: Recovery;

  constructor(
    protected readonly logger: Logger,
    reconnectDelayMs: number,
  ) {
    this.recovery = new Recovery({
      component: 'pgferry LISTEN connection',
      logger,
      policy: retryPolicy(Math.max(MAX_RECONNECT_DELAY_MS, reconnectDelayMs), reconnectDelayMs),
    });
    this.recovery.start();
  }

  /** Opens a connection whose notifications go to `dispatch` and whose loss is reported to `lost`. */
  protected abstract openConnection(): Promise<C>;
  /** Runs one statement (LISTEN/UNLISTEN) on the connection. */
  protected abstract run(conn: C, sql: string): Promise<unknown>;
  /** Ends the connection. */
  protected abstract end(conn: C): Promise<void>;
  /** Translates a client-library error. */
  protected abstract mapErr(err: unknown): unknown;

  async listen(channel: string, handler: NotificationHandler): Promise<Subscription> {
    if (this.closed) throw new ConnectionError('driver is closed');
    let set = this.handlers.get(channel);
    const first = !set;
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(handler);
    if (first) {
      try {
        await this.run(await this.connection(), `LISTEN ${quoteIdent(channel)}`);
      } catch (err) {
        set.delete(handler);
        if (set.size === 0) this.handlers.delete(channel);
        throw this.mapErr(err);
      }
    }
    return {
      close: async () => {
        const s = this.handlers.get(channel);
        if (!s || !s.delete(handler) || s.size > 0) return;
        this.handlers.delete(channel);
        if (this.conn && !this.closed) {
          await this.run(this.conn, `UNLISTEN ${quoteIdent(channel)}`).then(
            undefined,
            () => undefined,
          );
        }
      },
    };
  }

  protected dispatch(channel: string, payload: string | undefined): void {
    const set = this.handlers.get(channel);
    if (!set) return;
    for (const h of set) {
      try {
        h(payload);
      } catch (err) {
        this.logger.error({ err }, 'pgferry: notification handler threw');
      }
    }
  }

  /**
   * The connection dropped. `forget`: it is dead and a new one is needed
   * (node-postgres); otherwise the library reconnects by itself on the next
   * statement (postgres.js) and only the LISTENs are re-issued.
   */
  protected lost(conn: C, forget: boolean): void {
    if (forget) {
      if (this.conn !== conn) return;
      this.conn = undefined;
      this.end(conn).catch(() => undefined);
    }
    if (this.closed || this.reconnectTimer) return;
    const delay = this.recovery.failed(new ConnectionError('the LISTEN connection was lost'));
    if (this.handlers.size > 0) this.scheduleReconnect(delay);
  }

  private connection(): Promise<C> {
    if (this.conn) return Promise.resolve(this.conn);
    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async open(): Promise<C> {
    const conn = await this.openConnection();
    if (this.closed) {
      await this.end(conn).catch(() => undefined);
      throw new ConnectionError('driver is closed');
    }
    this.conn = conn;
    return conn;
  }

  private scheduleReconnect(delay: number): void {
    if (this.reconnectTimer || this.closed) return;
    this.reconnectTimer = setTimeout(async () => {
      this.reconnectTimer = undefined;
      try {
        const conn = await this.connection();
        for (const channel of this.handlers.keys())
          await this.run(conn, `LISTEN ${quoteIdent(channel)}`);
        this.recovery.ok();
        for (const channel of this.handlers.keys()) this.dispatch(channel, undefined);
      } catch (err) {
        this.scheduleReconnect(this.recovery.failed(err));
      }
    }, delay);
    this.reconnectTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.handlers.clear();
    const conn = this.conn ?? (await this.opening?.catch(() => undefined));
    this.conn = undefined;
    if (conn) await this.end(conn).catch(() => undefined);
  }
}
