import pg from 'pg';
import { ListenGuard } from '../driver/pooler.js';
import { atMost, pgClientDeadlines } from '../driver/deadlines.js';
import { quoteIdent } from '../driver/quote.js';
import type { Logger } from '../logger.js';
import type { TickerOptions } from './ticker-options.js';

/**
 * A ticker's own connections: the one it ticks on, and where it LISTENs for
 * consumers' tick requests (the same one, or behind a transaction pooler
 * the direct `listenConnectionString`).
 */
export class TickerConnection {
  private client: pg.Client | undefined;
  private listenClient: pg.Client | undefined;
  private readonly listenGuard: ListenGuard;

  constructor(
    private readonly config: TickerOptions,
    private readonly schema: string,
    private readonly id: string,
    private readonly logger: Logger,
    private readonly events: {
      /** The ticking connection failed (it is dropped). */
      lost(): void;
      /** A notification or an error: the ticker should run a round now. */
      wake(): void;
    },
  ) {
    this.listenGuard = new ListenGuard(config, logger);
  }

  /** The ticking connection, connecting when there is none. */
  async get(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = this.newClient(this.config.connectionString);
    client.on('error', (err) => {
      this.logger.debug({ err }, 'pgferry ticker: connection error');
      if (this.client === client) {
        this.client = undefined;
        this.events.lost();
      }
      this.events.wake();
    });
    client.on('notification', () => this.events.wake());
    await client.connect();
    this.client = client;
    return client;
  }

  /** The current ticking connection, if any (no connecting). */
  get current(): pg.Client | undefined {
    return this.client;
  }

  /**
   * LISTENs for consumers' tick requests: on its own connection, or through a
   * transaction pooler only on the direct `listenConnectionString` (without
   * it the leader ticks on its own schedule, and warns once).
   */
  async listenForRequests(client: pg.Client): Promise<void> {
    const channel = quoteIdent(`pgferry.${this.schema}.tick_request`);
    if (this.config.pooler !== 'transaction') {
      if (this.listenClient !== client) {
        await client.query(`LISTEN ${channel}`);
        this.listenClient = client;
      }
      return;
    }
    if (this.listenGuard.refusal() || this.listenClient) return;
    const direct = this.newClient(this.config.listenConnectionString);
    direct.on('error', (err) => {
      this.logger.debug({ err }, 'pgferry ticker: listen connection error');
      if (this.listenClient === direct) this.listenClient = undefined;
      void direct.end().catch(() => undefined);
    });
    direct.on('notification', () => this.events.wake());
    this.listenClient = direct;
    try {
      await direct.connect();
      await direct.query(`LISTEN ${channel}`);
    } catch (err) {
      // Ticking goes on; the next round tries again.
      this.logger.debug({ err }, 'pgferry ticker: LISTEN on the direct URL failed');
      if (this.listenClient === direct) this.listenClient = undefined;
      await direct.end().catch(() => undefined);
    }
  }

  /** Closes both connections. */
  async drop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    const listen = this.listenClient;
    this.listenClient = undefined;
    // A frozen server may never answer the polite end: wait for it at most 2 s.
    if (listen && listen !== client) await atMost(listen.end(), 2000);
    if (client) await atMost(client.end(), 2000);
  }

  private newClient(connectionString: string | undefined): pg.Client {
    return new pg.Client({
      ...pgClientDeadlines(this.config),
      ...(connectionString ? { connectionString } : {}),
      application_name: `pgferry ticker ${this.id}`,
    });
  }
}
