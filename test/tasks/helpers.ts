import { TaskClient } from '../../src/tasks/client.js';
import { Worker, type WorkerOptions } from '../../src/tasks/worker.js';
import type { TestDb } from '../support/db.js';

export function taskClient(db: TestDb): TaskClient {
  return db.track(new TaskClient({ connectionString: db.url, queueSchema: db.queueSchema }));
}

/** A worker on its own pool; stopped (grace 0) after the file if the test did not stop it. */
export function worker(db: TestDb, options: Omit<WorkerOptions, 'connectionString'>): Worker {
  const w = new Worker({
    connectionString: db.url,
    queueSchema: db.queueSchema,
    handleSignals: false,
    pollIntervalMs: 200,
    prune: null,
    ...options,
  });
  db.track({ close: () => w.stop(0) });
  return w;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
