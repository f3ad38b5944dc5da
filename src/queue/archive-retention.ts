import type { Executor } from '../driver/types.js';
import { call } from './engine/calls.js';
import { durationMs, wholeSeconds } from './durations.js';
import { InvalidArgumentError } from '../errors.js';

/** An archive retention: milliseconds (stored as whole seconds, rounded up), or null to clear. */
export interface ArchiveRetention {
  retentionMs: number | null;
}

/**
 * Archive retention (pgferry addition): archived messages older than the
 * retention (by `archived_at`) are deleted by the maintenance entry point,
 * in batches. `null` clears it.
 */
export async function setArchiveRetention(
  exec: Executor,
  s: string,
  queue: string,
  retention: ArchiveRetention | number | null,
): Promise<void> {
  const secs = retentionSecondsOf(retention);
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

/** Whole seconds of a retention given as `{ retentionMs }` or (deprecated) as seconds; null clears. */
function retentionSecondsOf(retention: ArchiveRetention | number | null): number | null {
  if (retention === null) return null;
  const given: { retentionMs?: number | null; retentionSeconds?: number } =
    typeof retention === 'number' ? { retentionSeconds: retention } : { ...retention };
  if (
    typeof retention !== 'number' &&
    (typeof retention !== 'object' || !('retentionMs' in retention))
  ) {
    throw new InvalidArgumentError('archive retention must be { retentionMs } or null');
  }
  if (given.retentionMs === null) return null;
  return wholeSeconds(durationMs(given, 'retentionMs', 'retentionSeconds', { min: 1 })!);
}
