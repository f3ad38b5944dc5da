import { QueueClient } from '../../src/queue/client.js';
import { TaskClient } from '../../src/tasks/client.js';
import { defineTask } from '../../src/tasks/define.js';
import { Worker } from '../../src/tasks/worker.js';
import { startOwnServer } from '../../test/support/own-server.js';
import { percentile, type BenchSection } from '../harness.js';

// Crash-restart of a dedicated embedded server (SIGKILL of the postmaster,
// crash recovery on the same data folder), with a task Worker and a queue
// Consumer running on their default settings:
//   recovery time  = server ready (accepting connections again) → the first
//                    job / message sent at that moment has been handled;
//   wake-up after  = once recovered and idle again, send → handled (LISTEN
//                    path; a lost wake-up shows as a poll interval).
// Printed, not asserted: these depend on the machine and the back-off jitter.

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Calls `fn` until it succeeds (the server may still refuse for a moment after "ready"). */
async function retry<T>(fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch {
      await sleep(10);
    }
  }
}

export const recoverySection: BenchSection = {
  name: 'recovery',
  description:
    'crash-restart of the server: ready → first job/message handled, and wake-up latency after it (Worker, queue Consumer, default settings)',
  async run(ctx) {
    const server = await startOwnServer();
    const handled = new Map<string, number>();
    const waiting = new Map<string, (t: number) => void>();
    const seen = (key: string): void => {
      const t = performance.now();
      handled.set(key, t);
      waiting.get(key)?.(t);
    };
    // Bounded, so a component that does not recover shows as "not handled"
    // (Infinity) instead of hanging the run.
    const LIMIT_MS = 60_000;
    const until = (key: string): Promise<number> =>
      handled.has(key)
        ? Promise.resolve(handled.get(key)!)
        : new Promise((r) => {
            const timer = setTimeout(() => {
              ctx.log(`${key} not handled within ${LIMIT_MS / 1000} s`);
              r(Infinity);
            }, LIMIT_MS);
            waiting.set(key, (t) => {
              clearTimeout(timer);
              r(t);
            });
          });
    const job = defineTask<{ k: string }>({
      name: 'bench_recover_job',
      handler: ({ k }) => seen(`j${k}`),
    });
    const tasks = new TaskClient({ connectionString: server.url, maxConnections: 4 });
    const queue = new QueueClient({ connectionString: server.url, maxConnections: 4 });
    const worker = new Worker({ client: tasks, tasks: [job], handleSignals: false, prune: null });
    await queue.createQueue('bench_recover');
    await queue.enableNotifyInsert('bench_recover');
    const consumer = queue.consume<{ k: string }>('bench_recover');
    const loop = (async () => {
      for await (const d of consumer) {
        seen(`m${d.message.k}`);
        await d.delete().catch(() => undefined);
      }
    })();
    const rec = { worker: [] as number[], consumer: [] as number[] };
    const wake = { worker: [] as number[], consumer: [] as number[] };
    try {
      await worker.start();
      const rounds = ctx.smoke ? 1 : 5;
      for (let round = 0; round < rounds; round++) {
        await server.crash();
        await server.start();
        const ready = performance.now();
        const k = `r${round}`;
        await Promise.all([
          retry(() => tasks.enqueue(job, { k })),
          retry(() => queue.send('bench_recover', { k })),
        ]);
        rec.worker.push((await until(`j${k}`)) - ready);
        rec.consumer.push((await until(`m${k}`)) - ready);
        // Idle again (both asleep), then one more of each through the wake-up path.
        await sleep(1500);
        const w = `w${round}`;
        const t0 = performance.now();
        await tasks.enqueue(job, { k: w });
        const t1 = performance.now();
        await queue.send('bench_recover', { k: w });
        wake.worker.push((await until(`j${w}`)) - t0);
        wake.consumer.push((await until(`m${w}`)) - t1);
      }
    } finally {
      consumer.stop();
      await loop;
      await worker.stop(0);
      await tasks.close();
      await queue.close();
      await server.destroy();
    }
    for (const who of ['worker', 'consumer'] as const) {
      const r = rec[who].sort((a, b) => a - b);
      const w = wake[who].sort((a, b) => a - b);
      ctx.report({
        section: 'recovery',
        operation: `${who}: server ready → first item handled, median`,
        value: percentile(r, 50),
        unit: 'ms',
      });
      ctx.report({
        section: 'recovery',
        operation: `${who}: server ready → first item handled, worst`,
        value: r[r.length - 1]!,
        unit: 'ms',
      });
      ctx.report({
        section: 'recovery',
        operation: `${who}: wake-up latency after the restart, median`,
        value: percentile(w, 50),
        unit: 'ms',
      });
    }
    ctx.log(
      'defaults: Worker errorRetryIntervalMs 5000 and pollIntervalMs 1000; Consumer retryDelayMs 1000 and pollIntervalMs 250',
    );
  },
};
