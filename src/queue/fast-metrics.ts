import { execute, type Executor } from '../driver/types.js';

/**
 * Fast exact metrics (pgferry addition, opt-in per queue): the queue keeps a
 * row count through statement-level triggers plus an index on enqueued_at,
 * so `metrics()` answers without scanning the table. The price is paid on
 * every send/delete statement of that queue (see docs/queue-reliability.md
 * and `npm run bench -- queue-metrics`).
 */
export async function enableFastMetrics(exec: Executor, s: string, queue: string): Promise<void> {
  await execute(exec, `SELECT ${s}.enable_fast_metrics($1::text)`, [queue]);
}

export async function disableFastMetrics(
  exec: Executor,
  s: string,
  queue: string,
): Promise<boolean> {
  const res = await execute<{ done: boolean }>(
    exec,
    `SELECT ${s}.disable_fast_metrics($1::text) AS done`,
    [queue],
  );
  return res.rows[0]!.done;
}

export async function fastMetricsEnabled(
  exec: Executor,
  s: string,
  queue: string,
): Promise<boolean> {
  const res = await execute<{ on: boolean }>(
    exec,
    `SELECT ${s}.fast_metrics_enabled($1::text) AS on`,
    [queue],
  );
  return res.rows[0]!.on;
}
