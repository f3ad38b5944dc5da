import type pg from 'pg';
import { randomUUID } from 'node:crypto';
import { quoteIdent } from '../driver/quote.js';
import { Recovery, retryPolicy, type Health } from '../health.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { checkSchemaName } from '../migrate/schema-name.js';
import { mapError } from '../errors.js';
import { Pause } from '../pause.js';
import { TickerConnection } from './ticker-connection.js';
import { tickerTiming, type TickerOptions, type TickerTiming } from './ticker-options.js';
import { TickerStatements } from './ticker-rounds.js';

export type { TickerOptions };

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
  /** This instance's name in the lease row (and in its connection's application_name). */
  readonly id: string = randomUUID();
  private readonly timing: TickerTiming;
  private readonly logger: Logger;
  private readonly connection: TickerConnection;
  private readonly statements: TickerStatements;
  private renewedAt = 0;
  private leader = false;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private readonly pauser = new Pause();
  private firstRound: Promise<void> | undefined;
  private roundDone: (() => void) | undefined;
  private warnedPrivilege = false;
  private readonly recovery: Recovery;

  constructor(private readonly config: TickerOptions = {}) {
    this.schema = checkSchemaName(config.schema ?? 'pgque');
    this.logger = config.logger ?? silentLogger;
    this.timing = tickerTiming(config);
    this.statements = new TickerStatements(quoteIdent(this.schema), this.id, this.timing);
    this.connection = new TickerConnection(config, this.schema, this.id, this.logger, {
      lost: () => this.setLeader(false),
      wake: () => this.poke(),
    });
    this.recovery = new Recovery({
      component: 'pgferry ticker',
      logger: this.logger,
      policy: retryPolicy(this.timing.electionIntervalMs),
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
    this.pauser.wake(true);
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
    let interval = this.timing.minIntervalMs;
    while (!this.stopped) {
      try {
        const client = await this.connection.get();
        if (!this.leader) {
          // A role without pgque_admin could win the lease and then fail every
          // round, starving a ticker that can tick: do not campaign then.
          if (!(await this.statements.mayTick(client))) {
            this.warnNoPrivilege();
            this.roundDone?.(); // running, leaving ticking to others
            await this.pause(Math.max(this.timing.electionIntervalMs, 30_000));
            continue;
          }
          const held = await this.claim(client);
          this.recovery.ok();
          if (!held) {
            this.roundDone?.(); // a follower: running
            await this.pause(this.timing.electionIntervalMs);
            continue;
          }
          this.setLeader(true);
          interval = this.timing.minIntervalMs;
        } else if (Date.now() - this.renewedAt >= this.renewEveryMs) {
          if (!(await this.claim(client))) {
            // Stalled past the lease: another ticker took over.
            this.setLeader(false);
            continue;
          }
        }
        await this.connection.listenForRequests(client);
        const ticked = await this.statements.step(client);
        this.recovery.ok();
        this.roundDone?.();
        interval =
          ticked > 0
            ? this.timing.minIntervalMs
            : Math.min(interval * 2, this.timing.maxIntervalMs);
        await this.pause(Math.min(interval, this.renewEveryMs));
      } catch (err) {
        if (this.stopped) break;
        // Logged once per outage, not per attempt.
        const delay = this.recovery.failed(mapError(err));
        this.roundDone?.(); // running, reconnecting
        await this.dropConnection();
        // A poke while connected (e.g. the error event) must not skip the back-off.
        this.pauser.forget();
        await this.pause(delay);
      }
    }
    await this.release();
    await this.dropConnection();
  }

  private get renewEveryMs(): number {
    return Math.max(1, Math.floor(this.timing.leaseMs / 3));
  }

  /** Takes or renews the lease (server clock); true when this instance holds it. */
  private async claim(client: pg.Client): Promise<boolean> {
    const started = Date.now();
    const held = await this.statements.claim(client);
    if (held) this.renewedAt = started;
    return held;
  }

  /** A clean stop hands the lease on at once (a follower need not wait for it to expire). */
  private async release(): Promise<void> {
    const client = this.connection.current;
    if (!this.leader || !client) return;
    await this.statements
      .release(client)
      .catch((err: unknown) => this.logger.debug({ err }, 'pgferry ticker: lease release failed'));
  }

  /** Closes its connections; the lease stays until it expires (or this ticker reconnects and renews it). */
  private async dropConnection(): Promise<void> {
    this.setLeader(false);
    await this.connection.drop();
  }

  private warnNoPrivilege(): void {
    if (this.warnedPrivilege) return;
    this.warnedPrivilege = true;
    this.logger.warn(
      { schema: this.schema },
      'pgferry ticker: this role may not tick (needs the admin role); leaving ticking to others',
    );
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
    return this.pauser.for(ms, this.stopped);
  }
}
