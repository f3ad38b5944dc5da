import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeWorkerUtils, run as gwRun, Logger as GwLogger } from 'graphile-worker';
import PgBoss from 'pg-boss';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { migrate } from '../../src/migrate/migrator.js';
import { defineTask } from '../../src/tasks/define.js';
import { TaskClient } from '../../src/tasks/client.js';
import { Worker } from '../../src/tasks/worker.js';
import {
  median,
  percentile,
  throughput,
  type BenchContext,
  type BenchSection,
} from '../harness.js';
import { GRAPHILE_TUNED, type CellPeer, type CellResult } from '../tasks-cell.js';
import { latencyFloor, paced } from '../latency-floor.js';

// pgferry tasks with every Worker default against graphile-worker 0.17.3 in
// its documented high-throughput configuration (GRAPHILE_TUNED), pg-boss
// 10.4.2 (the newest that run on Node 20) and BullMQ on this machine's Redis
// as the latency reference.
//   process: bench/tasks-cell.ts, one fresh process and database per cell,
//            jobs enqueued before the clock, clock to database-confirmed
//            completion; 20,000 and 100,000 jobs, cells interleaved over rounds
//   enqueue: single (4 clients, one job per call) and batched (1,000 per call)
//   latency: enqueue → handler start at ~200 jobs/s, p50 and p99; for
//            pgferry also handler return → completion committed
// A peer that cannot run is reported as not run, with the reason.

const REDIS = { host: '127.0.0.1', port: 6379 };
const silentGw = new GwLogger(() => () => undefined);
const BATCH = 1000;

interface Peer {
  name: string;
  enqueueSingle(n: number): Promise<number>;
  enqueueBatch(n: number): Promise<number>;
  /** Enqueue → handler-start latencies (ms); pgferry also fills `visible`. */
  latency(n: number): Promise<number[]>;
  close(): Promise<void>;
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Handler return → its completion committed (job:success), ms, from pgferry's latency run. */
let visible: number[] = [];

async function pgferryPeer(url: string): Promise<Peer> {
  await migrate({ connectionString: url, components: ['tasks'] });
  const client = new TaskClient({ connectionString: url, maxConnections: 4 });
  let lat: number[] = [];
  const returned = new Map<number, number>();
  const timed = defineTask<{ t: number }>({
    name: 'bench_lat',
    handler: ({ t }, ctx) => {
      lat.push(performance.now() - t);
      returned.set(ctx.job.id, performance.now());
    },
  });
  const enq = defineTask<{ i: number }>({ name: 'bench_enq', handler: () => undefined });
  await client.ensure([timed, enq]);
  return {
    name: 'pgferry',
    async enqueueSingle(n) {
      return throughput(n, 4, 1, async (c) => void (await client.enqueue(enq, { i: c })));
    },
    async enqueueBatch(n) {
      const jobs = Array.from({ length: BATCH }, (_, i) => ({ input: { i } }));
      return throughput(n, 1, BATCH, async () => void (await client.enqueueBatch(enq, jobs)));
    },
    async latency(n) {
      lat = [];
      visible = [];
      // Every Worker default.
      const w = new Worker({ connectionString: url, tasks: [timed], handleSignals: false });
      w.on('job:success', (job) => {
        const at = returned.get(job.id);
        if (at !== undefined) visible.push(performance.now() - at);
      });
      await w.start();
      await paced(n, (t) => client.enqueue(timed, { t }));
      while (lat.length < n || visible.length < n) await wait(10);
      await w.stop();
      return lat;
    },
    close: () => client.close(),
  };
}

async function graphilePeer(url: string): Promise<Peer> {
  const utils = await makeWorkerUtils({ connectionString: url, logger: silentGw });
  await utils.migrate();
  let lat: number[] = [];
  return {
    name: 'graphile-worker',
    async enqueueSingle(n) {
      return throughput(n, 4, 1, async (c) => void (await utils.addJob('bench_enq', { i: c })));
    },
    async enqueueBatch(n) {
      const jobs = Array.from({ length: BATCH }, (_, i) => ({
        identifier: 'bench_enq',
        payload: { i },
      }));
      return throughput(n, 1, BATCH, async () => void (await utils.addJobs(jobs)));
    },
    async latency(n) {
      lat = [];
      const runner = await gwRun({
        connectionString: url,
        noHandleSignals: true,
        logger: silentGw,
        taskList: {
          bench_lat: async (p: unknown) =>
            void lat.push(performance.now() - (p as { t: number }).t),
        },
        ...GRAPHILE_TUNED,
      });
      await paced(n, (t) => utils.addJob('bench_lat', { t }));
      while (lat.length < n) await wait(10);
      await runner.stop();
      return lat;
    },
    close: async () => void (await utils.release()),
  };
}

async function pgBossPeer(url: string): Promise<Peer> {
  const boss = new PgBoss({ connectionString: url, max: 12, supervise: false, schedule: false });
  boss.on('error', () => undefined);
  await boss.start();
  for (const q of ['bench_enq', 'bench_noop', 'bench_lat']) await boss.createQueue(q);
  return {
    name: 'pg-boss',
    async enqueueSingle(n) {
      return throughput(n, 4, 1, async (c) => void (await boss.send('bench_enq', { i: c })));
    },
    async enqueueBatch(n) {
      const jobs = Array.from({ length: 500 }, (_, i) => ({ name: 'bench_enq', data: { i } }));
      return throughput(n, 1, 500, async () => void (await boss.insert(jobs)));
    },
    async latency(n) {
      const lat: number[] = [];
      const ids: string[] = [];
      for (let k = 0; k < 10; k++) {
        ids.push(
          await boss.work(
            'bench_lat',
            { batchSize: 50, pollingIntervalSeconds: 0.5 },
            async (jobs) =>
              jobs.forEach((j) => lat.push(performance.now() - (j.data as { t: number }).t)),
          ),
        );
      }
      await paced(n, (t) => boss.send('bench_lat', { t }));
      while (lat.length < n) await wait(10);
      for (const id of ids) await boss.offWork({ id });
      return lat;
    },
    close: () => boss.stop({ graceful: false, wait: true }),
  };
}

async function bullPeer(): Promise<Peer> {
  const prefix = `pgferry_bench_${process.pid}`;
  const queues = new Map<string, BullQueue>();
  const q = (name: string): BullQueue => {
    let x = queues.get(name);
    if (!x) queues.set(name, (x = new BullQueue(name, { connection: REDIS, prefix })));
    return x;
  };
  await q('bench_enq').waitUntilReady();
  const opts = { removeOnComplete: true, removeOnFail: true };
  return {
    name: 'BullMQ (Redis)',
    async enqueueSingle(n) {
      return throughput(n, 4, 1, async (c) => void (await q('bench_enq').add('j', { i: c }, opts)));
    },
    async enqueueBatch(n) {
      const jobs = Array.from({ length: 500 }, (_, i) => ({ name: 'j', data: { i }, opts }));
      return throughput(n, 1, 500, async () => void (await q('bench_enq').addBulk(jobs)));
    },
    async latency(n) {
      const lat: number[] = [];
      const w = new BullWorker(
        'bench_lat',
        async (j) => void lat.push(performance.now() - (j.data as { t: number }).t),
        {
          connection: REDIS,
          prefix,
          concurrency: 10,
        },
      );
      await w.waitUntilReady();
      await paced(n, (t) => q('bench_lat').add('j', { t }, opts));
      while (lat.length < n) await wait(10);
      await w.close();
      return lat;
    },
    async close() {
      for (const x of queues.values()) {
        await x.obliterate({ force: true }).catch(() => undefined);
        await x.close();
      }
    },
  };
}

type Figures = { single?: number; batch?: number; p50?: number; p99?: number };

/** Enqueue and latency, every peer in this process on the section's database. */
async function measureAll(
  ctx: BenchContext,
  makers: [string, () => Promise<Peer>][],
): Promise<Map<string, Figures | string>> {
  const out = new Map<string, Figures | string>();
  const peers: [string, Peer][] = [];
  for (const [label, make] of makers) {
    try {
      peers.push([label, await make()]);
      out.set(label, {});
    } catch (err) {
      out.set(label, `not run: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const phase = async (fn: (peer: Peer, f: Figures) => Promise<void>): Promise<void> => {
    for (const [label, peer] of peers) {
      const f = out.get(label);
      if (typeof f === 'string' || f === undefined) continue;
      try {
        await fn(peer, f);
      } catch (err) {
        out.set(label, `failed: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  };
  try {
    await phase(async (p, f) => void (f.single = await p.enqueueSingle(ctx.size(4000, 40))));
    await phase(async (p, f) => void (f.batch = await p.enqueueBatch(ctx.size(20_000, BATCH))));
    await phase(async (p, f) => {
      const lat = (await p.latency(ctx.size(600, 10))).sort((a, b) => a - b);
      f.p50 = percentile(lat, 50);
      f.p99 = percentile(lat, 99);
    });
  } finally {
    for (const [, p] of peers) await p.close().catch(() => undefined);
  }
  for (const [label, f] of out) {
    if (typeof f === 'string') {
      ctx.log(`${label}: ${f}`);
      continue;
    }
    const n = (v: number | undefined): string => (v === undefined ? '-' : String(Math.round(v)));
    ctx.log(
      `${label.padEnd(17)} enqueue ${n(f.single)}/s single, ${n(f.batch)}/s batched; ` +
        `latency p50 ${f.p50?.toFixed(1)} ms, p99 ${f.p99?.toFixed(1)} ms`,
    );
  }
  return out;
}

const CELL = fileURLToPath(new URL('../tasks-cell.ts', import.meta.url));

/** One processing cell in a fresh Node process (bench/tasks-cell.ts). */
function cell(peer: CellPeer, adminUrl: string, jobs: number): Promise<CellResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CELL, peer, adminUrl, String(jobs)],
      { timeout: 300_000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${peer} cell: ${err.message} ${stderr}`.trim()));
        else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as CellResult);
      },
    );
  });
}

/**
 * Processing: for each size, rounds of cells interleaved (pgferry, its
 * delete variant, graphile-worker, again…), medians; the 2× target is for
 * pgferry with every default against graphile-worker tuned.
 */
async function processing(ctx: BenchContext): Promise<void> {
  const peers: CellPeer[] = ['pgferry', 'pgferry-delete', 'graphile-tuned'];
  const sizes = ctx.smoke ? [200] : [20_000, 100_000];
  for (const jobs of sizes) {
    const got = new Map<CellPeer, CellResult[]>();
    for (let r = 0; r < (ctx.smoke ? 1 : jobs > 20_000 ? 2 : 3); r++) {
      for (const p of peers) {
        const res = await cell(p, ctx.adminUrl, jobs);
        if (!res.ok) throw new Error(`${p} cell at ${jobs} jobs failed verification`);
        got.set(p, [...(got.get(p) ?? []), res]);
      }
    }
    const rate = (p: CellPeer): number => median(got.get(p)!.map((c) => c.perSecond));
    for (const p of peers) {
      const cs = got.get(p)!;
      ctx.log(
        `${p.padEnd(15)} ${jobs} jobs: ${cs.map((c) => Math.round(c.perSecond)).join(', ')} jobs/s ` +
          `(handled at ${cs.map((c) => c.handledSeconds.toFixed(2)).join(', ')} s of ${cs.map((c) => c.seconds.toFixed(2)).join(', ')} s; load ${cs.map((c) => c.load1[0].toFixed(1)).join(', ')})`,
      );
    }
    const gw = { name: 'graphile-worker tuned', value: rate('graphile-tuned') };
    ctx.report({
      section: 'tasks',
      operation: `process ${jobs} jobs, all defaults (vs graphile-worker tuned)`,
      value: rate('pgferry'),
      unit: 'jobs/s',
      baseline: gw,
      target: { ratio: 2 },
    });
    ctx.report({
      section: 'tasks',
      operation: `process ${jobs} jobs, defaults + onComplete delete`,
      value: rate('pgferry-delete'),
      unit: 'jobs/s',
      baseline: gw,
      target: { ratio: 2 },
    });
  }
}

export const tasksSection: BenchSection = {
  name: 'tasks',
  description:
    'task processing (fresh process per cell, clock to database-confirmed completion, 20,000 and 100,000 jobs), enqueue and enqueue→start latency vs graphile-worker tuned, pg-boss, BullMQ',
  async run(ctx) {
    await processing(ctx);
    const makers: [string, () => Promise<Peer>][] = [
      ['pgferry', () => pgferryPeer(ctx.url)],
      ['graphile-worker', () => graphilePeer(ctx.url)],
      ['pg-boss', () => pgBossPeer(ctx.url)],
    ];
    if (ctx.smoke) ctx.log('BullMQ: not run: smoke mode does not use Redis');
    else makers.push(['BullMQ', bullPeer]);
    const all = await measureAll(ctx, makers);
    const ours = all.get('pgferry');
    if (typeof ours !== 'object') throw new Error(`pgferry: ${String(ours)}`);
    const peers = [...all].filter(([l]) => l !== 'pgferry');
    const row = (operation: string, value: number, key: keyof Figures, target?: number) => {
      for (const [name, f] of peers) {
        if (typeof f === 'string' || f[key] === undefined) continue;
        ctx.report({
          section: 'tasks',
          operation: `${operation} (vs ${name})`,
          value,
          unit: 'jobs/s',
          baseline: { name, value: f[key]! },
          ...(target !== undefined && name === 'graphile-worker'
            ? { target: { ratio: target } }
            : {}),
        });
      }
    };
    row('enqueue, single, 4 clients', ours.single!, 'single');
    row(`enqueue, batches of ${BATCH}`, ours.batch!, 'batch', 1.5);
    const gw = all.get('graphile-worker');
    ctx.report({
      section: 'tasks',
      operation: 'enqueue → start latency p50',
      value: ours.p50!,
      unit: 'ms',
      target: { max: 1 },
    });
    ctx.report({
      section: 'tasks',
      operation: 'enqueue → start latency p99',
      value: ours.p99!,
      unit: 'ms',
      target: { max: 5 },
    });
    if (typeof gw === 'object')
      ctx.log(
        `graphile-worker tuned, same run: latency p50 ${gw.p50?.toFixed(1)} ms, p99 ${gw.p99?.toFixed(1)} ms`,
      );
    // What any NOTIFY-woken, durably leasing queue pays here at this pacing.
    const floor = await latencyFloor(ctx.url, ctx.size(600, 10));
    const floorStart = [...floor.start].sort((a, b) => a - b);
    const floorInsert = [...floor.insert].sort((a, b) => a - b);
    ctx.report({
      section: 'tasks',
      operation: 'latency p50 floor: plain SQL (no target)',
      value: percentile(floorStart, 50),
      unit: 'ms',
    });
    ctx.log(
      `plain SQL floor, same pacing: INSERT + NOTIFY (durable) → LISTEN → lease UPDATE by id (durable): ` +
        `p50 ${percentile(floorStart, 50).toFixed(2)} ms, p99 ${percentile(floorStart, 99).toFixed(2)} ms; ` +
        `the producer's INSERT + NOTIFY round trip alone p50 ${percentile(floorInsert, 50).toFixed(2)} ms; ` +
        `pgferry's p50 is ${(ours.p50! - percentile(floorStart, 50)).toFixed(2)} ms above the floor`,
    );
    const vis = [...visible].sort((a, b) => a - b);
    ctx.report({
      section: 'tasks',
      operation: 'handler return → completion committed, p99',
      value: percentile(vis, 99),
      unit: 'ms',
      target: { max: 15 },
    });
    ctx.log(
      `handler return → completion committed: p50 ${percentile(vis, 50).toFixed(1)} ms, max ${vis[vis.length - 1]?.toFixed(1)} ms`,
    );
  },
};
