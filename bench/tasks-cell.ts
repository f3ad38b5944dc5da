// One processing cell of the `tasks` bench section, in a fresh process:
//   node --import tsx bench/tasks-cell.ts <peer> <server admin URL> <jobs>
// Creates its own database, enqueues <jobs> no-op jobs in batches of 1,000
// (untimed), runs ANALYZE, then starts the clock just before the worker
// starts and stops it when the database shows every job finished (polled
// every 5 ms once the handler has seen them all, so batched completions
// count). Prints one JSON line. The way job-queue peer benchmarks measure
// (a fresh process per cell, a clock to the state the database confirms), so a
// warm process or a clock that stops at the last handler call flatters no one.
import { run as gwRun, makeWorkerUtils, Logger as GwLogger } from 'graphile-worker';
import pg from 'pg';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate } from '../src/migrate/migrator.js';
import { defineTask } from '../src/tasks/define.js';
import { TaskClient } from '../src/tasks/client.js';
import { Worker } from '../src/tasks/worker.js';
import { createDatabase } from './harness.js';

/** Cell peers: pgferry with every Worker default (archive, or onComplete 'delete'), graphile-worker tuned. */
export const CELL_PEERS = ['pgferry', 'pgferry-delete', 'graphile-tuned'] as const;
export type CellPeer = (typeof CELL_PEERS)[number];

export interface CellResult {
  peer: CellPeer;
  jobs: number;
  /** Worker start → the database shows every job finished. */
  seconds: number;
  perSecond: number;
  /** Worker start → the handler has seen every job. */
  handledSeconds: number;
  /** Every job handled exactly once and finished in the database. */
  ok: boolean;
  load1: [number, number];
}

/** graphile-worker's documented high-throughput configuration (worker.graphile.org/docs/performance). */
export const GRAPHILE_TUNED = {
  concurrency: 10,
  maxPoolSize: 11,
  preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
};

interface Side {
  enqueue(from: number, n: number): Promise<void>;
  start(handler: (id: string) => void): Promise<() => Promise<void>>;
  /** Jobs not finished yet, as the database says. */
  left(): Promise<number>;
  /** The database shows every job finished successfully (none failed or dead). */
  verify(jobs: number): Promise<boolean>;
  close(): Promise<void>;
}

const silentGw = new GwLogger(() => () => undefined);

async function pgferrySide(url: string, onComplete: 'archive' | 'delete'): Promise<Side> {
  await migrate({ connectionString: url, components: ['tasks'] });
  let onJob: (id: string) => void = () => undefined;
  const task = defineTask<{ i: number }>({
    name: 'bench_noop',
    onComplete,
    handler: (_input, ctx) => onJob(String(ctx.job.id)),
  });
  const client = new TaskClient({ connectionString: url, maxConnections: 1 });
  await client.ensure(task);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const count = async (sql: string): Promise<number> =>
    (await db.query<{ n: number }>(sql)).rows[0]!.n;
  return {
    enqueue: async (from, n) =>
      void (await client.enqueueBatch(
        task,
        Array.from({ length: n }, (_, k) => ({ input: { i: from + k } })),
      )),
    async start(handler) {
      onJob = handler;
      // Every Worker default: this is what `new Worker({ tasks })` gets.
      const w = new Worker({ connectionString: url, tasks: [task], handleSignals: false });
      await w.start();
      return () => w.stop();
    },
    left: () => count(`SELECT count(*)::int AS n FROM pgmq.q_bench_noop`),
    verify: async (jobs) =>
      (await count(`SELECT count(*)::int AS n FROM pgmq.q_bench_noop_dlq`)) === 0 &&
      (onComplete === 'delete' ||
        (await count(`SELECT count(*)::int AS n FROM pgmq.a_bench_noop`)) === jobs),
    async close() {
      await client.close();
      await db.end();
    },
  };
}

async function graphileSide(url: string): Promise<Side> {
  const utils = await makeWorkerUtils({ connectionString: url, logger: silentGw });
  await utils.migrate();
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const left = async (): Promise<number> =>
    (
      await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM graphile_worker._private_jobs WHERE attempts = 0 OR locked_at IS NOT NULL`,
      )
    ).rows[0]!.n;
  return {
    enqueue: async (from, n) =>
      void (await utils.addJobs(
        Array.from({ length: n }, (_, k) => ({
          identifier: 'bench_noop',
          payload: { i: from + k },
        })),
      )),
    async start(handler) {
      const runner = await gwRun({
        connectionString: url,
        noHandleSignals: true,
        logger: silentGw,
        taskList: { bench_noop: async (_p, helpers) => handler(helpers.job.id) },
        ...GRAPHILE_TUNED,
      });
      return () => runner.stop();
    },
    left,
    // graphile-worker deletes a finished job; a failed one stays.
    verify: async () =>
      (
        await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM graphile_worker._private_jobs`,
        )
      ).rows[0]!.n === 0,
    async close() {
      await utils.release();
      await db.end();
    },
  };
}

export async function runCell(peer: CellPeer, adminUrl: string, jobs: number): Promise<CellResult> {
  const load0 = loadavg()[0]!;
  const database = await createDatabase(adminUrl);
  try {
    const side =
      peer === 'graphile-tuned'
        ? await graphileSide(database.url)
        : await pgferrySide(database.url, peer === 'pgferry' ? 'archive' : 'delete');
    try {
      for (let i = 0; i < jobs; i += 1000) await side.enqueue(i, Math.min(1000, jobs - i));
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      await admin.query('ANALYZE');
      await admin.end();
      const seen = new Set<string>();
      let runs = 0;
      let resolveAll!: () => void;
      const all = new Promise<void>((r) => (resolveAll = r));
      const t0 = performance.now();
      const stop = await side.start((id) => {
        runs++;
        seen.add(id);
        if (seen.size === jobs) resolveAll();
      });
      await all;
      const tHandled = performance.now();
      while ((await side.left()) > 0) await new Promise((r) => setTimeout(r, 5));
      const t1 = performance.now();
      await stop();
      const ok = seen.size === jobs && runs === jobs && (await side.verify(jobs));
      const seconds = (t1 - t0) / 1000;
      return {
        peer,
        jobs,
        seconds,
        perSecond: jobs / seconds,
        handledSeconds: (tHandled - t0) / 1000,
        ok,
        load1: [load0, loadavg()[0]!],
      };
    } finally {
      await side.close();
    }
  } finally {
    await database.drop();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [peer, adminUrl, jobs] = process.argv.slice(2);
  if (!CELL_PEERS.includes(peer as CellPeer) || !adminUrl || !Number(jobs)) {
    console.error(`usage: tasks-cell.ts ${CELL_PEERS.join('|')} <admin URL> <jobs>`);
    process.exit(2);
  }
  const r = await runCell(peer as CellPeer, adminUrl, Number(jobs));
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0);
}
