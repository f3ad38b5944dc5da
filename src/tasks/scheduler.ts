import { Cron } from 'croner';
import { execute } from '../driver/types.js';
import type { TaskClient } from './client.js';
import { H } from './headers.js';
import type { AnyTask, NormalizedSchedule } from './types.js';
import { validateInput } from './validate.js';

/** Occurrences older than this when a worker looks are "missed" (downtime), not late. */
export const ON_TIME_WINDOW_MS = 60_000;
const MAX_BACKFILL = 1000;

interface Entry {
  task: AnyTask;
  schedule: NormalizedSchedule;
  cron: Cron;
}

/**
 * Fires cron schedules. Every worker may run one; each occurrence is
 * enqueued exactly once because firing locks the schedule's row (SKIP
 * LOCKED: others move on), enqueues, and advances last_occurrence in the
 * same transaction. The job also carries an idempotency key per
 * occurrence, as a second guard.
 */
export class Scheduler {
  private readonly entries: Entry[];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ticking: Promise<void> | undefined;

  constructor(
    private readonly client: TaskClient,
    tasks: readonly AnyTask[],
    /** Reports a failure; returns the back-off delay before the next attempt. */
    private readonly onError: (err: unknown) => number,
  ) {
    this.entries = tasks.flatMap((task) =>
      task.cron.map((schedule) => ({
        task,
        schedule,
        cron: new Cron(schedule.pattern, { timezone: schedule.timezone, paused: true }),
      })),
    );
  }

  get size(): number {
    return this.entries.length;
  }

  async start(): Promise<void> {
    // A schedule whose input the task's schema refuses would fail at every
    // occurrence: refuse it now, when the worker starts.
    for (const e of this.entries) await validateInput(e.task, e.schedule.input ?? {});
    for (const e of this.entries) {
      await execute(
        this.client.driver,
        `SELECT ${this.client.statements.t}.ensure_schedule($1, $2, $3, $4)`,
        [e.schedule.name, e.task.name, e.schedule.pattern, e.schedule.timezone ?? null],
      );
    }
    this.arm();
  }

  private arm(retryInMs?: number): void {
    if (this.stopped || this.entries.length === 0) return;
    const now = Date.now();
    // After a failed tick, look again after the back-off delay instead of
    // waiting for the next occurrence: a missed one fires once the database is back.
    let next = now + Math.min(60_000, retryInMs ?? 60_000);
    for (const e of this.entries) {
      const n = e.cron.nextRun(new Date(now))?.getTime();
      if (n !== undefined && n < next) next = n;
    }
    // A few ms after the occurrence so that "now" is past it when we look.
    this.timer = setTimeout(
      () => {
        let retryInMs: number | undefined;
        this.ticking = this.tickEntries(new Date(), (ms) => (retryInMs = ms))
          .then(() => undefined)
          .finally(() => {
            this.ticking = undefined;
            this.arm(retryInMs);
          });
      },
      Math.max(0, next - now + 5),
    );
    this.timer.unref();
  }

  /** Fires every schedule that is due at `now` (time is injectable for tests). */
  tick(now: Date = new Date()): Promise<number> {
    return this.tickEntries(now, () => undefined);
  }

  private async tickEntries(now: Date, retryIn: (ms: number) => void): Promise<number> {
    let fired = 0;
    for (const e of this.entries) {
      try {
        fired += await this.fire(e, now);
      } catch (err) {
        retryIn(this.onError(err));
      }
    }
    return fired;
  }

  private fire(e: Entry, now: Date): Promise<number> {
    return this.client.transaction(async (tx) => {
      const res = await tx.query<{ last: Date }>(
        `SELECT last_occurrence AS last FROM ${this.client.statements.t}.schedules WHERE name = $1 FOR UPDATE SKIP LOCKED`,
        [e.schedule.name],
      );
      if (!res.rows[0]) return 0;
      const last = new Date(res.rows[0].last);
      const due: Date[] = [];
      let latest: Date | null = null;
      for (
        let at = e.cron.nextRun(last);
        at && at.getTime() <= now.getTime();
        at = e.cron.nextRun(at)
      ) {
        latest = at;
        // Keep the most recent MAX_BACKFILL occurrences.
        if (due.length >= MAX_BACKFILL) due.shift();
        due.push(at);
      }
      if (!latest) return 0;
      const onTime = due.filter((d) => now.getTime() - d.getTime() <= ON_TIME_WINDOW_MS);
      const missed = due.filter((d) => now.getTime() - d.getTime() > ON_TIME_WINDOW_MS);
      const fire = [...onTime];
      // runOnce: all missed occurrences together run once (as the latest of them).
      if (missed.length > 0 && e.schedule.onMissed === 'runOnce')
        fire.unshift(missed[missed.length - 1]!);
      for (const at of fire) {
        const iso = at.toISOString();
        await this.client.enqueue(e.task, e.schedule.input ?? {}, {
          tx,
          idempotencyKey: `cron:${e.schedule.name}:${iso}`,
          headers: { [H.schedule]: e.schedule.name, [H.occurrence]: iso },
        });
      }
      await tx.query(
        `UPDATE ${this.client.statements.t}.schedules SET last_occurrence = $2, updated_at = clock_timestamp() WHERE name = $1`,
        [e.schedule.name, latest],
      );
      return fire.length;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
  }
}
