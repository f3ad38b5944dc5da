// How many jobs a bulk operation by filter (TaskClient.retryJobs / cancelJobs /
// deleteJobs) would touch now: the dashboard's confirmation shows it before
// the operation runs. Read-only (the read driver, a replica when given),
// through the same engine functions as browsing, matching what bulk_<op>
// matches: a job's state as ops_job_state derives it, containment on the
// input and the headers; a dead job to retry is a waiting dead letter.
import type { Executor } from '../driver/types.js';
import { checkFilter, type BulkOperation, type JobFilter } from '../tasks/bulk.js';
import type { JobState } from '../tasks/client.js';
import { browseJobs, browseMessages } from './browse.js';

/** Counting stops here (the confirmation then says "more than"). */
export const BULK_COUNT_CAP = 10_000;

export interface BulkCount {
  /** The states the operation applies to (the filter's, or the operation's default). */
  states: JobState[];
  /** Matching jobs, at most BULK_COUNT_CAP. */
  count: number;
  /** True when there are more than BULK_COUNT_CAP. */
  capped: boolean;
}

/** Throws TaskConfigError for a filter the operation refuses (as the bulk method would). */
export async function countBulk(
  exec: Executor,
  schemas: { queue: string; tasks: string },
  op: BulkOperation,
  task: string,
  filter: JobFilter,
): Promise<BulkCount> {
  const f = checkFilter(op, filter);
  const states = f.states as JobState[];
  const match = {
    ...(filter.payload ? { payload: filter.payload } : {}),
    ...(filter.headers ? { headers: filter.headers } : {}),
  };
  let count = 0;
  for (const state of states) {
    let afterId = 0;
    for (;;) {
      const limit = Math.min(1000, BULK_COUNT_CAP + 1 - count);
      const page =
        op === 'retry' && state === 'dead'
          ? await browseMessages(exec, schemas.queue, task + '_dlq', { ...match, afterId, limit })
          : await browseJobs(exec, schemas.tasks, task, { ...match, state, afterId, limit });
      count += page.length;
      if (count > BULK_COUNT_CAP) return { states, count: BULK_COUNT_CAP, capped: true };
      if (page.length < limit) break;
      afterId = page[page.length - 1]!.msgId;
    }
  }
  return { states, count, capped: false };
}
