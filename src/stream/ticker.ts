import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { ASYNC_COMMIT, ListenGuard, type PoolerOptions } from '../driver/pooler.js';
import { atMost, pgClientDeadlines, type DeadlineOptions } from '../driver/deadlines.js';
import { quoteIdent } from '../driver/quote.js';
import { Recovery, retryPolicy, type Health } from '../health.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { checkSchemaName } from '../migrate/schema-name.js';
import { mapError } from '../errors.js';

export interface TickerOptions extends PoolerOptions, DeadlineOptions {
  /** Connection string; otherwise `DATABASE_URL`, otherwise libpq's `PG*` variables. */
  connectionString?: string;
  /** Schema of the stream engine. Default `pgque`. */
  schema?: string;
  /** Pause between ticks while events flow. Default 5. */
  minIntervalMs?: number;
  /** Longest pause when idle (the interval doubles up to it). Default 500. */
  maxIntervalMs?: number;
  /**
   * How often a follower tries to become leader (takeover time after a leader
   * dies), and the longest wait between reconnection attempts after the
   * database was lost (they back off from 100 ms up to this). Default 1000.
   */
  electionIntervalMs?: number;
  /**
   * How long the leader's lease lasts without renewal (it renews every third
   * of it): after a leader dies without stopping, a follower takes over
   * within this plus `electionIntervalMs`. Default max(5 × electionIntervalMs, 2000).
   */
  leaseMs?: number;
  /** How often due retries are moved back into their streams. Default 1000. */
  retryIntervalMs?: number;
  /** How often table rotation runs (`maint()`). Default 30000. */
  maintIntervalMs?: number;
  logger?: Logger;
  /** Called when this ticker becomes leader (true) or stops being leader (false). */
  onLeaderChange?: (leader: boolean) => void;
}

/**
 * The elected ticker. Every process may run one; exactly one per database
 * (and schema) holds the lease row `<schema>.ticker_lease` and ticks. The
 * leader renews it; a clean stop releases it and a follower takes over
 * within `electionIntervalMs`; when the leader dies, a follower takes over
 * once the lease has expired (`leaseMs`). No session state: no session
 * advisory lock and no session SET, so it works through PgBouncer in
 * transaction mode (docs/deployment.md).
 *
 * The leader ticks adaptively: `tick_pending()` ticks every stream with new
 * events at once, the loop then runs again after `minIntervalMs`; when nothing
 * was ticked the pause doubles up to `maxIntervalMs`. Consumers that find
 * nothing ask for a tick (`request_tick`), and sends NOTIFY the leader while a
 * consumer waits, so an idle system still delivers in milliseconds.
 */
export class Ticker {
  readonly schema: string;
  private readonly options: Required<
    Omit<
      TickerOptions,
      | 'connectionString'
      | 'logger'
      | 'onLeaderChange'
      | 'schema'
      | keyof DeadlineOptions
      | 'pooler'
      | 'listenConnectionString'
    >
  >;
  /** This instance's name in the lease row (and in its connection's application_name). */
  readonly id: string = randomUUID();
  private readonly listenGuard: ListenGuard;
  private listenClient: pg.Client | undefined;
  private renewedAt = 0;
  private readonly logger: Logger;
  private readonly s: string;
  private client: pg.Client | undefined;
  private leader = false;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private woken = false;
  private firstRound: Promise<void> | undefined;
  private roundDone: (() => void) | undefined;
  private lastRetry = 0;
  private lastMaint = 0;
  private warnedPrivilege = false;
  private readonly recovery: Recovery;

  constructor(private readonly config: TickerOptions = {}) {
    this.schema = checkSchemaName(config.schema ?? 'pgque');
    this.s = quoteIdent(this.schema);
    this.logger = config.logger ?? silentLogger;
    this.options = {
      minIntervalMs: config.minIntervalMs ?? 5,
      maxIntervalMs: config.maxIntervalMs ?? 500,
      electionIntervalMs: config.electionIntervalMs ?? 1000,
      retryIntervalMs: config.retryIntervalMs ?? 1000,
      maintIntervalMs: config.maintIntervalMs ?? 30_000,
      leaseMs: 0,
    };
    this.options.leaseMs = config.leaseMs ?? Math.max(5 * this.options.electionIntervalMs, 2000);
    this.listenGuard = new ListenGuard(config, this.logger);
    this.recovery = new Recovery({
      component: 'pgferry ticker',
      logger: this.logger,
      policy: retryPolicy(this.options.electionIntervalMs),
      context: { schema: this.schema },
    });
  }

  /**
   * running (leader or follower, reaching the database) / reconnecting (its
   * connection failed; it retries with back-off and campaigns again) / stopped.
   */
  health(): Health {
    return this.recovery.health();
  }

  /** True while this instance holds the lease and ticks. */
  get isLeader(): boolean {
    return this.leader;
  }

  /**
   * Starts campaigning and resolves once running: its first election round
   * is done (it leads or follows; when the database cannot be reached it
   * keeps retrying with back-off, health() says `reconnecting`). Ticking
   * starts when elected. Idempotent.
   */
  start(): Promise<void> {
    if (this.stopped) {
      this.stopped = false;
      this.recovery.start();
      this.firstRound = new Promise<void>((resolve) => (this.roundDone = resolve));
      this.loop = this.rounds();
    }
    return Promise.race([this.firstRound!, this.loop!]);
  }

  /** start(), then resolves once stopped (by stop()). */
  async run(): Promise<void> {
    await this.start();
    await this.loop;
  }

  /** Ticks now instead of waiting out the current pause (leader only; no-op otherwise). */
  poke(): void {
    this.woken = true;
    this.wake?.();
  }

  /** Stops ticking, releases leadership (closing its connection) and resolves when done. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.poke();
    await this.loop;
    this.recovery.stop();
  }

  private async rounds(): Promise<void> {
    let interval = this.options.minIntervalMs;
    while (!this.stopped) {
      try {
        const client = await this.connection();
        if (!this.leader) {
          // A role without pgque_admin could win the lock and then fail every
          // round, starving a ticker that can tick: do not campaign then.
          const may = await client.query<{ ok: boolean }>(
            `SELECT has_function_privilege(to_regprocedure($1), 'EXECUTE') AS ok`,
            [`${this.s}.tick_pending(text)`],
          );
          if (!may.rows[0]!.ok) {
            if (!this.warnedPrivilege) {
              this.warnedPrivilege = true;
              this.logger.warn(
                { schema: this.schema },
                'pgferry ticker: this role may not tick (needs the admin role); leaving ticking to others',
              );
            }
            this.roundDone?.(); // running, leaving ticking to others
            await this.pause(Math.max(this.options.electionIntervalMs, 30_000));
            continue;
          }
          const held = await this.claim(client);
          this.recovery.ok();
          if (!held) {
            this.roundDone?.(); // a follower: running
            await this.pause(this.options.electionIntervalMs);
            continue;
          }
          this.setLeader(true);
          interval = this.options.minIntervalMs;
        } else if (Date.now() - this.renewedAt >= this.renewEveryMs) {
          if (!(await this.claim(client))) {
            // Stalled past the lease: another ticker took over.
            this.setLeader(false);
            continue;
          }
        }
        await this.listenForRequests(client);
        const ticked = await this.step(client);
        this.recovery.ok();
        this.roundDone?.();
        interval =
          ticked > 0
            ? this.options.minIntervalMs
            : Math.min(interval * 2, this.options.maxIntervalMs);
        await this.pause(Math.min(interval, this.renewEveryMs));
      } catch (err) {
        if (this.stopped) break;
        // Logged once per outage, not per attempt.
        const delay = this.recovery.failed(mapError(err));
        this.roundDone?.(); // running, reconnecting
        await this.dropClient();
        // A poke while connected (e.g. the error event) must not skip the back-off.
        this.woken = false;
        await this.pause(delay);
      }
    }
    await this.release();
    await this.dropClient();
  }

  private get renewEveryMs(): number {
    return Math.max(1, Math.floor(this.options.leaseMs / 3));
  }

  /** Takes or renews the lease (server clock); true when this instance holds it. */
  private async claim(client: pg.Client): Promise<boolean> {
    const started = Date.now();
    const r = await client.query(
      `INSERT INTO ${this.s}.ticker_lease AS l (holder, expires_at)
       VALUES ($1, clock_timestamp() + make_interval(secs => $2::double precision / 1000))
       ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
        WHERE l.holder = excluded.holder OR l.expires_at < clock_timestamp()
       RETURNING l.holder`,
      [this.id, this.options.leaseMs],
    );
    if (r.rowCount === 1) this.renewedAt = started;
    return r.rowCount === 1;
  }

  /** A clean stop hands the lease on at once (a follower need not wait for it to expire). */
  private async release(): Promise<void> {
    if (!this.leader || !this.client) return;
    await this.client
      .query(`DELETE FROM ${this.s}.ticker_lease WHERE holder = $1`, [this.id])
      .catch((err: unknown) => this.logger.debug({ err }, 'pgferry ticker: lease release failed'));
  }

  /**
   * LISTENs for consumers' tick requests: on its own connection, or through a
   * transaction pooler only on the direct `listenConnectionString` (without
   * it the leader ticks on its own schedule, and warns once).
   */
  private async listenForRequests(client: pg.Client): Promise<void> {
    const channel = quoteIdent(`pgferry.${this.schema}.tick_request`);
    if (this.config.pooler !== 'transaction') {
      if (this.listenClient !== client) {
        await client.query(`LISTEN ${channel}`);
        this.listenClient = client;
      }
      return;
    }
    if (this.listenGuard.refusal() || this.listenClient) return;
    const direct = new pg.Client({
      ...pgClientDeadlines(this.config),
      connectionString: this.config.listenConnectionString,
      application_name: `pgferry ticker ${this.id}`,
    });
    direct.on('error', (err) => {
      this.logger.debug({ err }, 'pgferry ticker: listen connection error');
      if (this.listenClient === direct) this.listenClient = undefined;
      void direct.end().catch(() => undefined);
    });
    direct.on('notification', () => this.poke());
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

  /** One leader round: tick, and now and then move retries and rotate tables. */
  private async step(client: pg.Client): Promise<number> {
    // Ticks, retry moves and rotations commit without waiting for the WAL
    // flush (ASYNC_COMMIT: for that statement's transaction only): each is
    // atomic, and any durable commit that depends on one (a consumer's ack
    // of a batch ending at a tick) flushes the WAL up to it anyway. A crash
    // can only lose ticks nobody used yet. This takes one fsync out of the
    // send → handler path.
    const r = await client.query<{ n: number }>(
      `SELECT t.n FROM ${ASYNC_COMMIT}, ${this.s}.tick_pending() AS t(n)`,
    );
    const now = Date.now();
    if (now - this.lastRetry >= this.options.retryIntervalMs) {
      this.lastRetry = now;
      // Bounded: 10 rows per call, so a big backlog is moved over several rounds.
      for (let i = 0; i < 100; i++) {
        const m = await client.query<{ n: number }>(
          `SELECT m.n FROM ${ASYNC_COMMIT}, ${this.s}.maint_retry_events() AS m(n)`,
        );
        if (m.rows[0]!.n === 0) break;
      }
    }
    if (now - this.lastMaint >= this.options.maintIntervalMs) {
      this.lastMaint = now;
      await client.query(`SELECT 1 FROM ${ASYNC_COMMIT}, ${this.s}.maint()`);
    }
    return r.rows[0]!.n;
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = new pg.Client({
      ...pgClientDeadlines(this.config),
      ...(this.config.connectionString ? { connectionString: this.config.connectionString } : {}),
      application_name: `pgferry ticker ${this.id}`,
    });
    client.on('error', (err) => {
      this.logger.debug({ err }, 'pgferry ticker: connection error');
      if (this.client === client) {
        this.client = undefined;
        this.setLeader(false);
      }
      this.poke();
    });
    client.on('notification', () => this.poke());
    await client.connect();
    this.client = client;
    return client;
  }

  private async dropClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.setLeader(false);
    const listen = this.listenClient;
    this.listenClient = undefined;
    // A frozen server may never answer the polite end: wait for it at most 2 s.
    if (listen && listen !== client) await atMost(listen.end(), 2000);
    // The lease stays until it expires (or this ticker reconnects and renews it).
    if (client) await atMost(client.end(), 2000);
  }

  private setLeader(leader: boolean): void {
    if (this.leader === leader) return;
    this.leader = leader;
    this.logger.info(
      { schema: this.schema, leader },
      leader ? 'pgferry ticker: elected leader' : 'pgferry ticker: not leader',
    );
    this.config.onLeaderChange?.(leader);
  }

  private pause(ms: number): Promise<void> {
    if (this.woken || this.stopped) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        if (this.wake === wake) this.wake = undefined;
        this.woken = false;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wake = wake;
    });
  }
}

interface SharedEntry {
  ticker: Ticker;
  users: number;
}
const shared = new Map<string, SharedEntry>();

/**
 * One ticker per process for a connection string and schema, shared by every
 * consumer that asks for one; released when the last of them stops.
 */
export function acquireSharedTicker(options: TickerOptions): {
  ticker: Ticker;
  release(): Promise<void>;
} {
  const key = [
    options.connectionString ?? process.env.DATABASE_URL ?? '',
    options.schema ?? 'pgque',
    options.pooler ?? 'none',
    options.listenConnectionString ?? '',
  ].join('|');
  let entry = shared.get(key);
  if (!entry) {
    entry = { ticker: new Ticker(options), users: 0 };
    shared.set(key, entry);
    void entry.ticker.start();
  }
  entry.users++;
  const e = entry;
  let released = false;
  return {
    ticker: e.ticker,
    release: async () => {
      if (released) return;
      released = true;
      if (--e.users === 0) {
        shared.delete(key);
        await e.ticker.stop();
      }
    },
  };
}
