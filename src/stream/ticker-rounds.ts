import type pg from 'pg';
import { ASYNC_COMMIT } from '../driver/pooler.js';
import type { TickerTiming } from './ticker-options.js';

/**
 * The statements of a ticker's rounds, on its own connection: the lease
 * (`<schema>.ticker_lease`, server clock) and the leader's work.
 */
export class TickerStatements {
  private lastRetry = 0;
  private lastMaint = 0;

  constructor(
    private readonly s: string,
    private readonly id: string,
    private readonly timing: TickerTiming,
  ) {}

  /** Whether this role may tick (the admin role): a ticker that may not does not campaign. */
  async mayTick(client: pg.Client): Promise<boolean> {
    const may = await client.query<{ ok: boolean }>(
      `SELECT has_function_privilege(to_regprocedure($1), 'EXECUTE') AS ok`,
      [`${this.s}.tick_pending(text)`],
    );
    return may.rows[0]!.ok;
  }

  /** Takes or renews the lease; true when this instance holds it. */
  async claim(client: pg.Client): Promise<boolean> {
    const r = await client.query(
      `INSERT INTO ${this.s}.ticker_lease AS l (holder, expires_at)
       VALUES ($1, clock_timestamp() + make_interval(secs => $2::double precision / 1000))
       ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
        WHERE l.holder = excluded.holder OR l.expires_at < clock_timestamp()
       RETURNING l.holder`,
      [this.id, this.timing.leaseMs],
    );
    return r.rowCount === 1;
  }

  /** Gives the lease up (a clean stop: a follower need not wait for it to expire). */
  async release(client: pg.Client): Promise<void> {
    await client.query(`DELETE FROM ${this.s}.ticker_lease WHERE holder = $1`, [this.id]);
  }

  /** One leader round: tick, and now and then move retries and rotate tables. Returns the streams ticked. */
  async step(client: pg.Client): Promise<number> {
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
    if (now - this.lastRetry >= this.timing.retryIntervalMs) {
      this.lastRetry = now;
      // Bounded: 10 rows per call, so a big backlog is moved over several rounds.
      for (let i = 0; i < 100; i++) {
        const m = await client.query<{ n: number }>(
          `SELECT m.n FROM ${ASYNC_COMMIT}, ${this.s}.maint_retry_events() AS m(n)`,
        );
        if (m.rows[0]!.n === 0) break;
      }
    }
    if (now - this.lastMaint >= this.timing.maintIntervalMs) {
      this.lastMaint = now;
      await client.query(`SELECT 1 FROM ${ASYNC_COMMIT}, ${this.s}.maint()`);
    }
    return r.rows[0]!.n;
  }
}
