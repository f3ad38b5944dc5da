import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { Scheduler } from '../../src/tasks/scheduler.js';
import { TaskValidationError } from '../../src/tasks/errors.js';
import { z } from 'zod';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, worker } from './helpers.js';

const db = useTestDatabase();

describe('tasks: cron', () => {
  it('fires each occurrence exactly once with 3 workers running the schedule', async () => {
    const fired: string[] = [];
    const t = defineTask<{ from: string }>({
      name: 'every_second',
      cron: { pattern: '* * * * * *', timezone: 'Europe/Berlin', input: { from: 'cron' } },
      handler: (input, ctx) => {
        expect(input).toEqual({ from: 'cron' });
        fired.push(String(ctx.job.headers['x-pgferry-occurrence']));
      },
    });
    const ws = [0, 1, 2].map(() => worker(db, { tasks: [t] }));
    await Promise.all(ws.map((w) => w.start()));
    await eventually(() => fired.length >= 4, 10_000);
    await Promise.all(ws.map((w) => w.stop()));
    const sorted = [...fired].sort();
    expect(new Set(sorted).size).toBe(sorted.length); // no occurrence twice
    // Consecutive seconds, none skipped.
    const secs = sorted.map((s) => Date.parse(s) / 1000);
    for (let i = 1; i < secs.length; i++) expect(secs[i]! - secs[i - 1]!).toBe(1);
  });

  it('after downtime: runOnce enqueues one job for the missed occurrences, skip enqueues none', async () => {
    const once = defineTask({
      name: 'hourly_once',
      cron: { pattern: '0 * * * *', onMissed: 'runOnce' },
      handler: () => undefined,
    });
    const skip = defineTask({
      name: 'hourly_skip',
      cron: { pattern: '0 * * * *', onMissed: 'skip' },
      handler: () => undefined,
    });
    const client = taskClient(db);
    await client.ensure([once, skip]);
    const s = new Scheduler(client, [once, skip], (err) => {
      throw err;
    });
    await s.start();
    await s.stop();
    // The workers were down for 5 hours before T0 + 30 min (time is injected).
    const t0 = new Date();
    t0.setUTCHours(t0.getUTCHours() - 2, 0, 0, 0);
    await db.sql(
      `UPDATE pgferry_tasks.schedules SET last_occurrence = $1::timestamptz - interval '5 hours'`,
      [t0],
    );
    const now = new Date(t0.getTime() + 30 * 60_000);
    expect(await s.tick(now)).toBe(1);
    expect(await s.tick(now)).toBe(0); // nothing is fired twice
    const a = await db.sql<{ headers: Record<string, unknown> }>(
      `SELECT headers FROM ${db.queueSchema}.q_hourly_once`,
    );
    expect(a).toHaveLength(1);
    expect(a[0]!.headers['x-pgferry-occurrence']).toBe(t0.toISOString()); // the latest missed one
    expect(await db.sql(`SELECT 1 FROM ${db.queueSchema}.q_hourly_skip`)).toHaveLength(0);
    // The next occurrence, seen on time, fires for both policies.
    const next = new Date(t0.getTime() + 3_600_000 + 1000);
    expect(await s.tick(next)).toBe(2);
  });

  it('refuses to start a worker whose cron input the task schema rejects', async () => {
    const t = defineTask({
      name: 'cron_bad_input',
      schema: z.object({ n: z.number() }),
      cron: '0 0 * * *',
      handler: () => undefined,
    });
    const w = worker(db, { tasks: [t] });
    await expect(w.start()).rejects.toBeInstanceOf(TaskValidationError);
  });
});
