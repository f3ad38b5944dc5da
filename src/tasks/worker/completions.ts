import { frees, type Core, type Lane, type Running } from './core.js';
import { wakeLane } from './fetching.js';

/** Records a succeeded job and finishes it with the lane's next completion statement. */
export function completed(core: Core, r: Running, startedAt: number): void {
  const { lane, m } = r.leased;
  lane.done.ids.push(m.msgId);
  lane.done.rcs.push(m.readCount);
  lane.done.jobs.push({ job: r.job, startedAt });
  // Not awaited: the slot is free at once, and completions made while
  // a flush runs go together in the next statement.
  void flush(core, lane);
}

/**
 * Finishes completed jobs in batches: while one statement runs, later
 * completions queue up and go in the next one.
 */
export function flush(core: Core, lane: Lane): Promise<void> {
  if (lane.flushing) return lane.flushing;
  const batch = lane.done;
  if (batch.ids.length === 0) return Promise.resolve();
  lane.done = { ids: [], rcs: [], jobs: [] };
  lane.flushingCount = batch.ids.length;
  const task = lane.task;
  lane.flushing = core.client.statements
    .complete(
      core.client.driver,
      task.name,
      batch.ids,
      batch.rcs,
      task.onComplete === 'archive',
      core.o.asyncCommit,
      // Other workers may be waiting for the slot or group this frees.
      frees(task),
    )
    .then(
      () => {
        const now = Date.now();
        for (const { job, startedAt } of batch.jobs) core.fire('job:success', job, now - startedAt);
        if (core.drain) core.drain.summary.succeeded += batch.jobs.length;
      },
      (err: unknown) => {
        // Their leases run out and they run again: at-least-once, never lost.
        core.fail(err);
      },
    )
    .finally(() => {
      lane.flushing = undefined;
      // Finished jobs free a limited or grouped lane's next jobs.
      if (frees(task)) wakeLane(core, lane);
      if (lane.done.ids.length) void flush(core, lane);
      else core.pump();
    });
  return lane.flushing;
}

/** Waits until every completion of the lane is written. */
export async function flushAll(core: Core, lane: Lane): Promise<void> {
  while (lane.flushing || lane.done.ids.length) await flush(core, lane);
}
