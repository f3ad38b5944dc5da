import { afterEach, describe, expect, it, vi } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import type { Worker } from '../../src/tasks/worker.js';
import { ConnectionError } from '../../src/errors.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient, worker } from '../tasks/helpers.js';

const db = useTestDatabase();

/**
 * Makes the worker's next `n` fetches fail as a lost connection would;
 * returns a counter. Every way a lane leases jobs fails alike: the SQL
 * functions (fetch, fetch_after) and the prepared lease of a plain task.
 */
function failFetches(w: Worker, n: number): { failed: number; calls: number } {
  const s = w.client.statements;
  const count = { failed: 0, calls: 0 };
  const inject = <A extends unknown[], R>(real: (...a: A) => Promise<R>) => {
    const bound = real.bind(s);
    return (...args: A): Promise<R> => {
      count.calls++;
      if (count.failed < n) {
        count.failed++;
        return Promise.reject(new ConnectionError('injected: connection lost'));
      }
      return bound(...args);
    };
  };
  s.fetch = inject(s.fetch);
  s.fetchAfter = inject(s.fetchAfter);
  s.fetchPlain = inject(s.fetchPlain);
  return count;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Worker after failed fetches (issue #10: the lane stall)', () => {
  it('resumes even when the clock says the retry timer fired early (frozen Date, deterministic)', async () => {
    const seen: number[] = [];
    const t = defineTask<{ i: number }>({
      name: 'stall_clock',
      handler: ({ i }) => void seen.push(i),
    });
    const client = taskClient(db);
    await client.ensure(t);
    // listen: false, so no notification can rescue a lane that stopped looking.
    const w = worker(db, {
      tasks: [t],
      listen: false,
      errorRetryIntervalMs: 20,
      pollIntervalMs: 50,
    });
    const errors: unknown[] = [];
    w.on('worker:error', (err) => errors.push(err));
    // Date.now() stands still from here: every retry timer fires "before" any
    // deadline computed from the clock. The old lane compared such a deadline
    // with Date.now() when its timer fired, skipped the fetch and never looked again.
    vi.useFakeTimers({ toFake: ['Date'] });
    const count = failFetches(w, 5);
    await w.start();
    await eventually(() => count.failed === 5, 10_000);
    await client.enqueue(t, { i: 1 });
    await eventually(() => seen.includes(1), 10_000);
    expect(errors).toHaveLength(5);
    expect(errors.every((e) => e instanceof ConnectionError)).toBe(true);
    expect(w.health()).toMatchObject({
      state: 'running',
      failedAttempts: 0,
      reconnectingSince: null,
    });
    expect(w.health().lastError).toMatchObject({ code: 'PGFERRY_CONNECTION' });
    await w.stop();
    expect(w.health().state).toBe('stopped');
  });

  it('reports reconnecting while fetches fail, with the outage start and attempts', async () => {
    const t = defineTask({ name: 'stall_health', handler: () => undefined });
    const w = worker(db, { tasks: [t], listen: false, errorRetryIntervalMs: 50 });
    expect(w.health().state).toBe('stopped');
    const count = failFetches(w, 1_000_000);
    await w.start();
    await eventually(() => count.failed >= 3, 10_000);
    const h = w.health();
    expect(h.state).toBe('reconnecting');
    expect(h.reconnectingSince).toBeInstanceOf(Date);
    expect(h.failedAttempts).toBeGreaterThanOrEqual(3);
    expect(h.lastError?.message).toMatch(/injected/);
    expect(h.lastSuccessAt).toBeNull();
    await w.stop();
  });

  it('runs a job enqueued after 1,000 failed fetches (the issue reproduction, timing-based)', async () => {
    const seen: number[] = [];
    const t = defineTask<{ i: number }>({
      name: 'stall_many',
      handler: ({ i }) => void seen.push(i),
    });
    const client = taskClient(db);
    await client.ensure(t);
    const w = worker(db, {
      tasks: [t],
      listen: false,
      errorRetryIntervalMs: 1,
      pollIntervalMs: 50,
    });
    const count = failFetches(w, 1000);
    await w.start();
    await eventually(() => count.failed === 1000, 20_000);
    await client.enqueue(t, { i: 7 });
    await eventually(() => seen.includes(7), 10_000);
    expect(w.health().state).toBe('running');
    await w.stop();
  });
});
