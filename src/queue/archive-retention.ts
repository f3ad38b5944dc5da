import { execute, type Executor } from '../driver/types.js';
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
  await execute(
    exec,
    `SELECT ${s}.set_archive_retention($1::text, make_interval(secs => $2::bigint))`,
    [queue, secs],
  );
}

export async function getArchiveRetention(
  exec: Executor,
  s: string,
  queue: string,
): Promise<number | null> {
  const res = await execute<{ secs: string | number | null }>(
    exec,
    `SELECT extract(epoch FROM ${s}.get_archive_retention($1::text)) AS secs`,
    [queue],
  );
  const v = res.rows[0]?.secs;
  return v == null ? null : Number(v);
}
