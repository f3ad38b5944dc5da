import type { Core } from './core.js';

/** A snapshot of what a Worker is doing (`worker.stats()`). */
export interface WorkerStats {
  /** Handlers running now, all tasks. */
  running: number;
  /** Per task (by name). */
  tasks: Record<
    string,
    {
      /** Jobs the next fetch asks for: adaptive unless `batchSize` was given. */
      batchSize: number;
      /** Leased jobs waiting in the local buffer. */
      buffered: number;
      /** Fetch queries in flight. */
      fetching: number;
      /** Succeeded jobs whose completion is not yet committed. */
      completing: number;
    }
  >;
}

export function workerStats(core: Core): WorkerStats {
  const tasks: WorkerStats['tasks'] = {};
  for (const l of core.lanes) {
    tasks[l.task.name] = {
      batchSize: l.batch,
      buffered: l.buffer.length,
      fetching: l.fetching,
      completing: l.done.ids.length + l.flushingCount,
    };
  }
  return { running: core.running.size, tasks };
}
