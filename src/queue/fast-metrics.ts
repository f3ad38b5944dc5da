import type { Executor } from '../driver/types.js';
import { call } from './engine/calls.js';

/**
 * Fast exact metrics (pgferry addition, opt-in per queue): the queue keeps a
 * row count through statement-level triggers plus an index on enqueued_at,
 * so `metrics()` answers without scanning the table. The price is paid on
 * every send/delete statement of that queue (see docs/queue-reliability.md
 * and `npm run bench -- queue-metrics`).
 */
export async function enableFastMetrics(exec: Executor, s: string, queue: string): Promise<void> {
  await call(exec, s, 'enable_fast_metrics', [[queue, 'text']]);
}

/** disable_fast_metrics / fast_metrics_enabled: (queue) → boolean. */
export async function fastMetricsFlag(
  exec: Executor,
  s: string,
  fn: 'disable_fast_metrics' | 'fast_metrics_enabled',
  queue: string,
): Promise<boolean> {
  return (await call<{ r: boolean }>(exec, s, fn, [[queue, 'text']]))[0]!.r;
}
