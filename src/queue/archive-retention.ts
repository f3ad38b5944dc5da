import type { Executor } from '../driver/types.js';
import { call } from './engine/calls.js';
import { checkInt } from './validate.js';

/**
 * Archive retention (pgferry addition): archived messages older than the
 * retention (by `archived_at`) are deleted by the maintenance entry point,
 * in batches. `null` clears it.
 */
export async function setArchiveRetention(
  exec: Executor,
  s: string,
  queue: string,
  retentionSeconds: number | null,
): Promise<void> {
  const secs =
    retentionSeconds === null ? null : checkInt('retentionSeconds', retentionSeconds, { min: 1 });
  await call(exec, s, 'set_archive_retention', [
    [queue, 'text'],
    [secs === null ? null : `${secs} seconds`, 'interval'],
  ]);
}

export async function getArchiveRetention(
  exec: Executor,
  s: string,
  queue: string,
): Promise<number | null> {
  const rows = await call<{ secs: string | number | null }>(
    exec,
    s,
    'get_archive_retention',
    [[queue, 'text']],
    { select: 'extract(epoch FROM r) AS secs' },
  );
  const v = rows[0]?.secs;
  return v == null ? null : Number(v);
}
