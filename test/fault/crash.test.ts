// A real server crash (SIGKILL of the postmaster, crash recovery on restart)
// and a clean stop/start, on a server of this file's own: the task Worker
// (lanes and cron), the queue Consumer and the MaintenanceScheduler resume by
// themselves, handle what is sent after recovery, and lose nothing that was
// acknowledged before the crash.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueClient } from '../../src/queue/client.js';
import type { Consumer } from '../../src/queue/consumer.js';
import type { MaintenanceScheduler } from '../../src/queue/maintenance.js';
import { TaskClient } from '../../src/tasks/client.js';
import { defineTask } from '../../src/tasks/define.js';
import { Worker } from '../../src/tasks/worker.js';
import { eventually } from '../support/db.js';
import { startOwnServer, waitUntilReady, type OwnServer } from '../support/own-server.js';

let server: OwnServer;
let queue: QueueClient;
let tasks: TaskClient;
let worker: Worker;
let consumer: Consumer<{ i: number }>;
let consuming: Promise<void>;
let maintenance: MaintenanceScheduler;
let passes = 0;

/** Times each job input / message body was handled. */
const jobRuns = new Map<number, number>();
const msgRuns = new Map<number, number>();
let cronRuns = 0;
const bump = (m: Map<number, number>, i: number): void => void m.set(i, (m.get(i) ?? 0) + 1);

const job = defineTask<{ i: number }>({
  name: 'fault_job',
  // Short timeout and lease: a job leased when the server died is offered again soon.
  timeoutMs: 1000,
  handler: ({ i }) => void bump(jobRuns, i),
});
const cron = defineTask({
  name: 'fault_cron',
  cron: { pattern: '* * * * * *' },
  handler: () => void cronRuns++,
});

/** Retries back off up to this (ms): the bound a component resumes within is about this plus one call. */
const RETRY_CAP_MS = 300;
/** Generous for a loaded 2-core machine; the bench section prints the real figures. */
const BOUND_MS = 15_000;

beforeAll(async () => {
  server = await startOwnServer();
  queue = new QueueClient({ connectionString: server.url });
  await queue.createQueue('fault_q');
  await queue.enableNotifyInsert('fault_q');
  tasks = new TaskClient({ connectionString: server.url });
  worker = new Worker({
    client: tasks,
    tasks: [job, cron],
    handleSignals: false,
    prune: null,
    errorRetryIntervalMs: RETRY_CAP_MS,
    leaseMarginMs: 500,
    // Long: after a restart the lanes must come back through the reconnected
    // LISTEN's wake-up and the retry timers, not through a poll.
    pollIntervalMs: 20_000,
  });
  await worker.start();
  consumer = queue.consume<{ i: number }>('fault_q', {
    retryDelayMs: RETRY_CAP_MS,
    visibilityTimeoutSeconds: 2,
    pollIntervalMs: 250,
  });
  consuming = (async () => {
    for await (const d of consumer) {
      bump(msgRuns, d.message.i);
      // An outage between read and delete: the message comes back after its vt.
      await d.delete().catch(() => undefined);
    }
  })();
  maintenance = queue.maintenance({ intervalMs: 200, onPass: () => void passes++ });
  await maintenance.start();
}, 120_000);

afterAll(async () => {
  consumer?.stop();
  await consuming?.catch(() => undefined);
  await maintenance?.stop();
  await worker?.stop(0);
  await tasks?.close();
  await queue?.close();
  await server?.destroy();
}, 60_000);

/** Sends jobs and messages `from..to-1`, all awaited (acknowledged). */
async function sendRange(from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    await tasks.enqueue(job, { i });
    await queue.send('fault_q', { i });
  }
}

const allHandled = (from: number, to: number): boolean => {
  for (let i = from; i < to; i++) if (!jobRuns.get(i) || !msgRuns.get(i)) return false;
  return true;
};

async function outage(kind: 'crash' | 'stop', base: number): Promise<void> {
  // Acknowledged right before the outage; some are in flight when it comes.
  await sendRange(base, base + 40);
  if (kind === 'crash') await server.crash();
  else await server.stop();
  // Every component that calls the database notices and says so.
  await eventually(
    () =>
      worker.health().state === 'reconnecting' &&
      consumer.health().state === 'reconnecting' &&
      maintenance.health().state === 'reconnecting',
    BOUND_MS,
  );
  expect(worker.health().reconnectingSince).toBeInstanceOf(Date);
  expect(consumer.health().lastError?.code).toBe('PGFERRY_CONNECTION');
  // Keep it down for a few retries: back-off, no tight loop.
  const attempts = consumer.health().failedAttempts;
  await new Promise((r) => setTimeout(r, 4 * RETRY_CAP_MS));
  const more = consumer.health().failedAttempts - attempts;
  expect(more).toBeGreaterThanOrEqual(1);
  expect(more).toBeLessThanOrEqual(30);
  await server.start();
  await waitUntilReady(server.url);
}

describe.sequential('recovery from a real server outage', () => {
  it('baseline: everything sent is handled once', async () => {
    await sendRange(0, 20);
    await eventually(() => allHandled(0, 20), BOUND_MS);
    await eventually(() => cronRuns > 0, BOUND_MS);
    expect(worker.health().state).toBe('running');
  });

  for (const [kind, base] of [
    ['crash', 100],
    ['stop', 200],
  ] as const) {
    it(`${kind === 'crash' ? 'SIGKILL of the postmaster' : 'clean stop'}, restart on the same data folder: all resume, nothing acknowledged is lost`, async () => {
      const passesBefore = passes;
      await outage(kind, base);
      const cronBefore = cronRuns;
      // Sent after recovery: handled within the bound, by the same worker and consumer.
      await sendRange(base + 50, base + 60);
      await eventually(() => allHandled(base + 50, base + 60), BOUND_MS);
      // Sent before the outage and acknowledged: none lost (at least once).
      await eventually(() => allHandled(base, base + 40), BOUND_MS);
      await eventually(() => cronRuns > cronBefore, BOUND_MS);
      await eventually(
        () => passes > passesBefore && maintenance.health().state === 'running',
        BOUND_MS,
      );
      for (const c of [worker, consumer, maintenance]) {
        const h = c.health();
        expect(h.state).toBe('running');
        expect(h.reconnectingSince).toBeNull();
        expect(h.lastError).not.toBeNull();
        expect(h.lastSuccessAt!.getTime()).toBeGreaterThan(h.lastError!.at.getTime());
      }
      // Nothing ran more than twice: a run twice is a completion lost in the
      // crash (asynchronous commit) or a delete cut off by the outage, which
      // the at-least-once contract allows; never a loop of redeliveries.
      for (let i = base; i < base + 60; i++) {
        expect(jobRuns.get(i) ?? 0).toBeLessThanOrEqual(2);
        expect(msgRuns.get(i) ?? 0).toBeLessThanOrEqual(2);
      }
      // Every job is finished in the database: none stuck leased or lost.
      await eventually(async () => {
        const r = await tasks.driver.query<{ n: string }>(
          `SELECT count(*) AS n FROM pgmq.q_fault_job`,
        );
        return r.rows[0]!.n === '0';
      }, BOUND_MS);
    });
  }
});
