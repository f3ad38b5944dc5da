import { describe, expect, it } from 'vitest';
import { Recovery, backoffDelayMs, retryPolicy } from '../../src/health.js';
import { ConnectionError } from '../../src/errors.js';
import { recordingLogger } from '../bus/helpers.js';

describe('shared back-off and recovery state', () => {
  it('doubles from initialMs up to maxMs, jittered within [d/2, d]', () => {
    const p = retryPolicy(1000);
    expect(p).toEqual({ initialMs: 100, maxMs: 1000 });
    expect(retryPolicy(40)).toEqual({ initialMs: 40, maxMs: 40 });
    const lo = (n: number): number => backoffDelayMs(n, p, () => 0);
    const hi = (n: number): number => backoffDelayMs(n, p, () => 1);
    expect([1, 2, 3, 4, 5, 50].map(hi)).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([1, 2, 3, 4, 5, 50].map(lo)).toEqual([50, 100, 200, 400, 500, 500]);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs(3, p);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });

  it('logs an outage once when it starts and once when it ends, whatever the number of attempts', () => {
    const logger = recordingLogger();
    const r = new Recovery({
      component: 'thing',
      logger,
      policy: retryPolicy(500),
      random: () => 1,
    });
    expect(r.health().state).toBe('stopped');
    r.start();
    r.ok();
    expect(r.health()).toMatchObject({ state: 'running', lastError: null, failedAttempts: 0 });
    const delays = Array.from({ length: 10 }, () => r.failed(new ConnectionError('down')));
    expect(delays).toEqual([100, 200, 400, 500, 500, 500, 500, 500, 500, 500]);
    const h = r.health();
    expect(h).toMatchObject({ state: 'reconnecting', failedAttempts: 10 });
    expect(h.lastError).toMatchObject({
      name: 'ConnectionError',
      code: 'PGFERRY_CONNECTION',
      message: 'down',
    });
    r.ok();
    expect(r.health()).toMatchObject({
      state: 'running',
      failedAttempts: 0,
      reconnectingSince: null,
    });
    expect(r.failed(new Error('again'))).toBe(100); // a new outage starts from the beginning
    const loud = logger.entries
      .filter((e) => e.level !== 'debug')
      .map((e) => `${e.level} ${e.msg}`);
    expect(loud).toEqual([
      'warn thing: database call failed; retrying with back-off',
      'info thing: database reachable again; resumed',
      'warn thing: database call failed; retrying with back-off',
    ]);
    r.stop();
    expect(r.health().state).toBe('stopped');
  });
});
