import { InvalidArgumentError } from '../errors.js';
import { H } from '../tasks/headers.js';
import type { BrowsedJob } from './browse.js';
import type { Ops } from './ops.js';

export type JobAction = 'retry' | 'cancel' | 'delete';

/** What an action did to each job it was given. */
export interface JobActionResult {
  id: number;
  /** done: it happened; skipped: the job's state does not allow it, or it moved on since it was listed. */
  outcome: 'done' | 'skipped';
  detail: string;
}

/**
 * Runs an action on jobs found by browseJobs, on the primary. Every change is
 * fenced by the job's read count as it was listed, so a job a worker picked up
 * in between is left alone (never made visible again while it runs):
 *   retry:  queued/scheduled/retrying → runs now (vt = now);
 *           dead → its dead letter is rescheduled as a new job.
 *   cancel: queued/scheduled/retrying/running → TaskClient.cancel.
 *   delete: queued/scheduled/retrying → removed (running jobs: cancel first).
 * Flows (sql/tasks/0004_results.sql): a held parent is not made to run
 * before its children, and a child is not deleted behind its parent's back
 * (its parent would wait for ever); cancel it, which the parent counts.
 */
export async function runJobAction(
  ops: Ops,
  action: JobAction,
  task: string,
  jobs: readonly BrowsedJob[],
): Promise<JobActionResult[]> {
  if (!['retry', 'cancel', 'delete'].includes(action))
    throw new InvalidArgumentError(`job action must be retry, cancel or delete, got ${action}`);
  const out: JobActionResult[] = [];
  const skip = (j: BrowsedJob, why: string) =>
    out.push({ id: j.msgId, outcome: 'skipped', detail: why });
  const waiting = (j: BrowsedJob) =>
    j.state === 'queued' || j.state === 'scheduled' || j.state === 'retrying';
  const heldParent = (j: BrowsedJob) => j.state === 'scheduled' && j.headers?.[H.flow] != null;
  const flowChild = (j: BrowsedJob) => j.headers?.[H.parent] != null;
  for (const j of jobs) {
    if (j.task !== task) throw new InvalidArgumentError(`job ${j.msgId} is not a ${task} job`);
    if (action === 'retry') {
      if (heldParent(j)) skip(j, 'a flow parent runs when its children have finished');
      else if (waiting(j)) {
        const m = await ops.writeQueues.setVisibilityTimeoutIfHeld(task, j.msgId, j.readCount, 0);
        if (m) out.push({ id: j.msgId, outcome: 'done', detail: 'runs now' });
        else skip(j, 'picked up or gone since listed');
      } else if (j.state === 'dead') {
        const dl = Number((j.headers ?? {})[H.deadLetterId]);
        if (!Number.isSafeInteger(dl) || dl < 1) {
          skip(j, 'no dead-letter id on the archived job');
          continue;
        }
        const moved = await ops.writeTasks.deadLetters(task).requeue({ ids: [dl] });
        if (moved[0])
          out.push({ id: j.msgId, outcome: 'done', detail: `new job ${moved[0].newId}` });
        else skip(j, `dead letter ${dl} is gone (rescheduled or purged)`);
      } else skip(j, `a ${j.state} job cannot be retried`);
    } else if (action === 'cancel') {
      if (waiting(j) || j.state === 'running') {
        const was = await ops.writeTasks.cancel(task, j.msgId);
        if (was === 'not_found') skip(j, 'finished or gone since listed');
        else out.push({ id: j.msgId, outcome: 'done', detail: `cancelled (was ${was})` });
      } else skip(j, `a ${j.state} job cannot be cancelled`);
    } else {
      if (waiting(j) && flowChild(j))
        skip(
          j,
          'a flow child: cancel it instead (its parent counts it; a deleted one it would wait for)',
        );
      else if (waiting(j)) {
        const ok = await ops.writeQueues.deleteIfHeld(task, j.msgId, j.readCount);
        if (ok) out.push({ id: j.msgId, outcome: 'done', detail: 'deleted' });
        else skip(j, 'picked up or gone since listed');
      } else skip(j, `a ${j.state} job cannot be deleted (cancel a running job first)`);
    }
  }
  return out;
}
