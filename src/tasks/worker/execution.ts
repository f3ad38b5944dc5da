import { retryDelayMs } from '../backoff.js';
import { JobAbort, attempt, jobInfo, serialiseError, type Outcome } from '../run-job.js';
import { completed, wakeParents } from './completions.js';
import { RunHolder } from '../run-holder.js';
import { frees, type Core, type Lane, type Leased, type Running } from './core.js';
import { fillLanes, refresh, wakeLane } from './fetching.js';

/** Starts buffered jobs, round robin over the lanes, while handler slots are free. */
export function dispatch(core: Core, rr: { next: number }): void {
  const { lanes } = core;
  while (core.running.size < core.o.concurrency && core.state === 'running') {
    let picked: Lane | undefined;
    for (let i = 0; i < lanes.length; i++) {
      const lane = lanes[(rr.next + i) % lanes.length]!;
      if (lane.buffer.length > 0 && !lane.refreshing) {
        picked = lane;
        rr.next = (rr.next + i + 1) % lanes.length;
        break;
      }
    }
    if (!picked) return;
    const next = picked.buffer[0]!;
    // A job that waited in the buffer has used part of its lease: renew the
    // lane's waiting jobs before starting any of them.
    if (Date.now() - next.leasedAt > core.o.leaseMarginMs / 2) {
      void refresh(core, picked);
      continue;
    }
    picked.buffer.shift();
    picked.started++;
    startJob(core, next);
  }
}

function startJob(core: Core, leased: Leased): void {
  const { lane, m } = leased;
  const key = `${lane.task.name}:${m.msgId}`;
  const entry = {
    leased,
    job: jobInfo(lane.task, m),
    abort: new JobAbort(),
    handedBack: false,
    done: settled,
  } as Running;
  core.running.set(key, entry);
  const task = lane.task;
  const startedAt = Date.now();
  let outcome: Outcome | Promise<Outcome>;
  try {
    core.fire('job:start', entry.job);
    // Progress, ctx.complete(tx) and a flow parent's children (job-features.ts).
    const run = new RunHolder(
      core.client,
      task,
      m,
      core.o.progressIntervalMs,
      frees(task),
      core.logger,
    );
    outcome = attempt(task, m, entry.job, entry.abort, core.o.leaseMarginMs / 2, core.logger, run);
  } catch (err) {
    outcome = { kind: 'retry', error: err };
  }
  if (
    !(outcome instanceof Promise) &&
    outcome.kind === 'success' &&
    !outcome.inTx &&
    !frees(task)
  ) {
    // Finished in this tick (a handler that returned at once): record it and
    // free the slot without a promise. dispatch() goes on with the next job;
    // the lanes' fetch-ahead looks at the buffer as it does after any finish.
    completed(core, entry, startedAt, outcome.result);
    core.running.delete(key);
    fillLanes(core);
    return;
  }
  entry.done = execute(core, entry, key, startedAt, outcome);
}

const settled: Promise<void> = Promise.resolve();

/**
 * Waits for the attempt and records its outcome: completion, retry or dead
 * letter; then frees the handler slot (`key` in `core.running`).
 */
async function execute(
  core: Core,
  r: Running,
  key: string,
  startedAt: number,
  attempted: Outcome | Promise<Outcome>,
): Promise<void> {
  try {
    const { lane, m } = r.leased;
    const task = lane.task;
    const { client } = core;
    let outcome: Outcome;
    try {
      outcome = await attempted;
    } catch (err) {
      outcome = { kind: 'retry', error: err };
    }
    if (r.handedBack || outcome.kind === 'shutdown') return;
    try {
      switch (outcome.kind) {
        case 'success':
          if (outcome.inTx) {
            // ctx.complete(tx) finished it in the handler's transaction.
            core.fire('job:success', r.job, Date.now() - startedAt);
            if (core.drain) core.drain.summary.succeeded++;
            wakeParents(core, [r.job]);
          } else completed(core, r, startedAt, outcome.result);
          return;
        case 'cancelled':
          core.fire('job:cancelled', r.job);
          return;
        case 'retry': {
          core.fire('job:failure', r.job, outcome.error);
          const delay = retryDelayMs(task.backoff, r.job.attempt, outcome.error);
          const ok = await client.statements.retry(
            client.driver,
            task.name,
            m.msgId,
            m.readCount,
            delay,
            serialiseError(outcome.error),
          );
          if (ok) core.fire('job:retry', r.job, outcome.error, delay);
          if (core.drain) core.drain.summary.retried++;
          // Runnable again (at once, with no backoff): a fetch that started
          // before this commit and comes back empty must not end the drain
          // or put the lane to sleep (wakeLane counts a wake-up).
          wakeLane(core, lane);
          return;
        }
        case 'dead': {
          core.fire('job:failure', r.job, outcome.error);
          const id = await client.statements.deadLetter(
            client.driver,
            task.name,
            m.msgId,
            m.readCount,
            serialiseError(outcome.error),
          );
          core.fire('job:dead', r.job, outcome.error, id);
          wakeParents(core, [r.job]); // a 'continue' flow runs its parent anyway
          if (core.drain) core.drain.summary.dead++;
          return;
        }
      }
    } catch (err) {
      // The job stays leased and comes back after its lease; nothing is lost.
      core.fail(err);
    }
  } finally {
    core.running.delete(key);
    // A limited or grouped lane may have become runnable by this finish.
    if (frees(r.leased.lane.task)) wakeLane(core, r.leased.lane);
    core.pump();
  }
}
