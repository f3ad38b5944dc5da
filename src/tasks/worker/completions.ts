import { emptyBatch, frees, type Core, type Lane, type Running } from './core.js';
import { wakeLane } from './fetching.js';
import { completePlain } from '../completion-statements.js';
import { completeResults, isFlowChild, parentTask } from '../job-features.js';
import type { JobInfo } from '../types.js';

/** Records a succeeded job and finishes it with the lane's next completion statement. */
export function completed(
  core: Core,
  r: Running,
  startedAt: number,
  result: string | null = null,
): void {
  const { lane, m } = r.leased;
  lane.done.ids.push(m.msgId);
  lane.done.rcs.push(m.readCount);
  lane.done.jobs.push(r.job);
  lane.done.starts.push(startedAt);
  lane.done.results.push(result);
  if (result !== null || isFlowChild(m)) lane.done.extra = true;
  // Not awaited: the slot is free at once, and completions made while
  // a flush runs go together in the next statement. With none in flight,
  // the statement starts once this turn of the event loop is done, so the
  // jobs finished in the same turn (a fetched batch of fast handlers) go
  // together instead of the first alone.
  if (lane.inFlight.length > 0) void flush(core, lane);
  else if (!lane.flushSoon) {
    lane.flushSoon = true;
    setImmediate(flushNow, core, lane);
  }
}

function flushNow(core: Core, lane: Lane): void {
  lane.flushSoon = false;
  void flush(core, lane);
}

/**
 * Completions that waited this long (ms) for the lane's statement in flight
 * go in a second statement beside it. Most statements commit within a few
 * milliseconds; one held up (a WAL flush, a busy server) would otherwise
 * hold every later completion of the lane until it returns.
 */
export const OVERLAP_MS = 4;

/**
 * Finishes completed jobs in batches: while a statement runs, later
 * completions queue up and go in the next one. One statement per lane at a
 * time, and a second beside it for completions that have waited OVERLAP_MS
 * (never for batches with results or flow children, which update shared
 * rows). Returns a promise that settles when every statement in flight has.
 */
export function flush(core: Core, lane: Lane): Promise<void> {
  if (lane.done.ids.length === 0) return lane.flushing ?? Promise.resolve();
  if (lane.inFlight.length === 0) return start(core, lane);
  // The batch's first completion arms the timer; start() disarms it.
  if (lane.inFlight.length === 1 && lane.overlapTimer === undefined) {
    lane.overlapTimer = setTimeout(() => {
      lane.overlapTimer = undefined;
      const first = lane.inFlight[0];
      if (lane.done.ids.length && lane.inFlight.length === 1 && !first!.extra && !lane.done.extra)
        void start(core, lane);
    }, OVERLAP_MS);
    lane.overlapTimer.unref();
  }
  return lane.flushing!;
}

/** Sends the lane's waiting completions in one statement. */
function start(core: Core, lane: Lane): Promise<void> {
  const batch = lane.done;
  lane.done = emptyBatch();
  clearTimeout(lane.overlapTimer);
  lane.overlapTimer = undefined;
  const entry = { extra: batch.extra };
  lane.inFlight.push(entry);
  lane.flushingCount += batch.ids.length;
  const task = lane.task;
  const st = core.client.statements;
  const archive = task.onComplete === 'archive';
  // Other workers may be waiting for the slot or group this frees.
  const notify = frees(task);
  // Results and flow children need complete_results; plain batches the plain statement.
  const statement = batch.extra
    ? completeResults(
        core.client.driver,
        st,
        task.name,
        batch.ids,
        batch.rcs,
        batch.results,
        archive,
        core.o.asyncCommit,
        notify,
      )
    : notify
      ? st.complete(
          core.client.driver,
          task.name,
          batch.ids,
          batch.rcs,
          archive,
          core.o.asyncCommit,
          notify,
        )
      : // The plain batch: a prepared statement doing what `complete` does.
        completePlain(
          st,
          core.client.driver,
          task.name,
          batch.ids,
          batch.rcs,
          archive,
          core.o.asyncCommit,
        );
  const done = statement
    .then(
      () => {
        const now = Date.now();
        const { jobs, starts } = batch;
        for (let i = 0; i < jobs.length; i++) core.fire('job:success', jobs[i]!, now - starts[i]!);
        if (batch.extra) wakeParents(core, batch.jobs);
        if (core.drain) core.drain.summary.succeeded += batch.jobs.length;
      },
      (err: unknown) => {
        // Their leases run out and they run again: at-least-once, never lost.
        core.fail(err);
      },
    )
    .finally(() => {
      lane.inFlight.splice(lane.inFlight.indexOf(entry), 1);
      lane.flushingCount -= batch.ids.length;
      if (lane.inFlight.length === 0) lane.flushing = undefined;
      // Finished jobs free a limited or grouped lane's next jobs.
      if (frees(task)) wakeLane(core, lane);
      if (lane.done.ids.length) void flush(core, lane);
      else core.pump();
    });
  // Settles when every statement in flight has (the one before may still run).
  lane.flushing = lane.flushing ? Promise.all([lane.flushing, done]).then(noop) : done;
  return lane.flushing;
}

const noop = (): void => undefined;

/**
 * Flow children finished: their parents may now be runnable. The release
 * also notifies, but a drain (runUntilIdle, or a worker without LISTEN)
 * must look again at once.
 */
export function wakeParents(core: Core, jobs: readonly JobInfo[]): void {
  for (const job of jobs) {
    const lane = core.byName.get(parentTask(job.headers) ?? '');
    if (lane) wakeLane(core, lane);
  }
}

/** Waits until every completion of the lane is written. */
export async function flushAll(core: Core, lane: Lane): Promise<void> {
  while (lane.flushing || lane.done.ids.length) await flush(core, lane);
  clearTimeout(lane.overlapTimer);
  lane.overlapTimer = undefined;
}
