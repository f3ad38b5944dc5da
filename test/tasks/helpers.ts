import { spawn, type ChildProcess } from 'node:child_process';
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

/**
 * Starts a worker process running `script` (a fixture under fixtures/, with
 * DB_URL and QUEUE_SCHEMA set); resolves once it printed "ready". Killed
 * (SIGKILL) after the file if still running; `onLine` sees every line it prints.
 */
export function workerProcess(
  db: TestDb,
  script: string,
  env: Record<string, string>,
  onLine: (line: string) => void = () => undefined,
): Promise<ChildProcess> {
  const p = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, DB_URL: db.url, QUEUE_SCHEMA: db.queueSchema, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  db.track({
    close: async () => {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await new Promise((r) => p.once('exit', r));
      }
    },
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'ready') resolve(p);
        onLine(line);
      }
    });
    p.once('exit', (code) => reject(new Error(`worker process exited early (${code})`)));
  });
}
