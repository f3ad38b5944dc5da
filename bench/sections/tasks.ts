import { run as gwRun, makeWorkerUtils, Logger as GwLogger } from 'graphile-worker';
import PgBoss from 'pg-boss';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { migrate } from '../../src/migrate/migrator.js';
import { defineTask } from '../../src/tasks/define.js';
import { TaskClient } from '../../src/tasks/client.js';
import { Worker } from '../../src/tasks/worker.js';
import { percentile, throughput, type BenchContext, type BenchSection } from '../harness.js';

// pgferry tasks against graphile-worker 0.17.3 and pg-boss 10.4.2 (the newest
// that run on Node 20) on the same database in the same run, each in its
// documented high-throughput configuration (set in graphilePeer/pgBossPeer below;
// docs/tasks.md lists them), and BullMQ on
// this machine's Redis as the latency reference.
//   enqueue: single (4 clients, one job per call) and batched (500 per call)
//   process: N no-op jobs already queued, concurrency 10, one process
//   latency: enqueue → handler start at ~200 jobs/s, p50 and p99
// A peer that cannot run is reported as not run, with the reason.

const REDIS = { host: '127.0.0.1', port: 6379 };
const silentGw = new GwLogger(() => () => undefined);
const gwPreset = {
  worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 },
};

interface Peer {
  name: string;
  enqueueSingle(n: number): Promise<number>;
  enqueueBatch(n: number): Promise<number>;
  process(n: number): Promise<number>;
  latency(n: number): Promise<number[]>;
  close(): Promise<void>;
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const secs = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

/** Sends `n` jobs ~200/s with jitter; `send(i)` enqueues job i carrying its send time. */
async function paced(n: number, send: (sentAt: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i++) {
    await wait(2 + Math.random() * 6);
    await send(performance.now());
  }
}

function done(n: number): { hit(): void; all: Promise<void> } {
  let left = n;
  let resolve!: () => void;
  const all = new Promise<void>((r) => (resolve = r));
  return { hit: () => void (--left === 0 && resolve()), all };
}

async function pgferryPeer(
  url: string,
  onComplete: 'archive' | 'delete' = 'archive',
): Promise<Peer> {
  await migrate({ connectionString: url, components: ['tasks'] });
  const client = new TaskClient({ connectionString: url, maxConnections: 4 });
  let counter: { hit(): void } = { hit: () => undefined };
  let lat: number[] = [];
  const noop = defineTask<{ i: number }>({
    name: `bench_noop_${onComplete}`,
    onComplete,
    handler: () => counter.hit(),
  });
  const timed = defineTask<{ t: number }>({
    name: 'bench_lat',
    handler: ({ t }) => void lat.push(performance.now() - t),
  });
  const enq = defineTask<{ i: number }>({ name: 'bench_enq', handler: () => undefined });
  await client.ensure([noop, timed, enq]);
  return {
    name: onComplete === 'archive' ? 'pgferry' : 'pgferry (delete)',
    async enqueueSingle(n) {
      return throughput(n, 4, 1, async (c) => void (await client.enqueue(enq, { i: c })));
    },
    async enqueueBatch(n) {
      const jobs = Array.from({ length: 500 }, (_, i) => ({ input: { i } }));
      return throughput(n, 1, 500, async () => void (await client.enqueueBatch(enq, jobs)));
    },
    async process(n) {
      for (let i = 0; i < n; i += 1000) {
        await client.enqueueBatch(
          noop,
          Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ input: { i: i + k } })),
        );
      }
      const d = done(n);
      counter = d;
      const w = new Worker({
        client,
        tasks: [noop],
        concurrency: 10,
        batchSize: 500,
        handleSignals: false,
        prune: null,
        cron: false,
      });
      const t0 = process.hrtime.bigint();
      await w.start();
      await d.all;
      const rate = n / secs(t0);
      await w.stop();
      return rate;
    },
    async latency(n) {
      lat = [];
      const w = new Worker({
        connectionString: url,
        tasks: [timed],
        concurrency: 10,
        handleSignals: false,
        prune: null,
        cron: false,
      });
      await w.start();
      await paced(n, (t) => client.enqueue(timed, { t }));
      while (lat.length < n) await wait(10);
      await w.stop();
      return lat;
    },
    close: () => client.close(),
  };
}

async function graphilePeer(url: string): Promise<Peer> {
  const utils = await makeWorkerUtils({ connectionString: url, logger: silentGw });
  await utils.migrate();
  let counter: { hit(): void } = { hit: () => undefined };
  let lat: number[] = [];
  const taskList = {
    bench_noop: async () => counter.hit(),
    bench_lat: async (p: unknown) => void lat.push(performance.now() - (p as { t: number }).t),
  };
  const start = (concurrency: number, tuned: boolean) =>
    gwRun({
      connectionString: url,
      concurrency,
      maxPoolSize: concurrency + 1,
      noHandleSignals: true,
      pollInterval: 1000,
      logger: silentGw,
      taskList,
      ...(tuned ? { preset: gwPreset } : {}),
    });
  return {
    name: 'graphile-worker',
    async enqueueSingle(n) {
      return throughput(n, 4, 1, async (c) => void (await utils.addJob('bench_enq', { i: c })));
    },
    async enqueueBatch(n) {
      const jobs = Array.from({ length: 500 }, (_, i) => ({
        identifier: 'bench_enq',
        payload: { i },
      }));
      return throughput(n, 1, 500, async () => void (await utils.addJobs(jobs)));
    },
    async process(n) {
      for (let i = 0; i < n; i += 1000) {
        await utils.addJobs(
          Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({
            identifier: 'bench_noop',
            payload: { i: i + k },
          })),
        );
      }
      const d = done(n);
      counter = d;
      const t0 = process.hrtime.bigint();
      const runner = await start(10, true);
      await d.all;
      const rate = n / secs(t0);
      await runner.stop();
      return rate;
    },
    async latency(n) {
      lat = [];
      const runner = await start(10, true);
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
    async process(n) {
      for (let i = 0; i < n; i += 1000) {
        await boss.insert(
          Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({
            name: 'bench_noop',
            data: { i: i + k },
          })),
        );
      }
      const d = done(n);
      const t0 = process.hrtime.bigint();
      const ids: string[] = [];
      for (let k = 0; k < 10; k++) {
        ids.push(
          await boss.work(
            'bench_noop',
            { batchSize: 500, pollingIntervalSeconds: 0.5 },
            async (jobs) => jobs.forEach(() => d.hit()),
          ),
        );
      }
      await d.all;
      const rate = n / secs(t0);
      for (const id of ids) await boss.offWork({ id });
      return rate;
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
    async process(n) {
      for (let i = 0; i < n; i += 1000) {
        await q('bench_noop').addBulk(
          Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({
            name: 'j',
            data: { i: i + k },
            opts,
          })),
        );
      }
      const d = done(n);
      const t0 = process.hrtime.bigint();
      const w = new BullWorker('bench_noop', async () => d.hit(), {
        connection: REDIS,
        prefix,
        concurrency: 10,
      });
      await d.all;
      const rate = n / secs(t0);
      await w.close();
      return rate;
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

type Figures = { single?: number; batch?: number; process?: number; p50?: number; p99?: number };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Runs every phase for every peer. Processing, the figure with a target, is
 * measured in interleaved rounds (pgferry, graphile-worker, … , again) and
 * the median kept: this machine is shared and a lone run can be off by 2×.
 */
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
  const phase = async (
    fn: (label: string, peer: Peer, f: Figures) => Promise<void>,
  ): Promise<void> => {
    for (const [label, peer] of peers) {
      const f = out.get(label);
      if (typeof f === 'string' || f === undefined) continue;
      try {
        await fn(label, peer, f);
      } catch (err) {
        out.set(label, `failed: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  };
  const rounds = new Map<string, number[]>();
  try {
    await phase(async (_l, p, f) => void (f.single = await p.enqueueSingle(ctx.size(4000, 40))));
    await phase(async (_l, p, f) => void (f.batch = await p.enqueueBatch(ctx.size(20_000, 500))));
    for (let r = 0; r < (ctx.smoke ? 1 : 3); r++) {
      await phase(
        async (l, p) =>
          void rounds.set(l, [...(rounds.get(l) ?? []), await p.process(ctx.size(20_000, 200))]),
      );
    }
    await phase(async (l, _p, f) => void (f.process = median(rounds.get(l)!)));
    await phase(async (_l, p, f) => {
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
      `${label.padEnd(17)} enqueue ${n(f.single)}/s single, ${n(f.batch)}/s batched; process ${n(f.process)}/s ` +
        `(rounds: ${(rounds.get(label) ?? []).map((x) => Math.round(x)).join(', ')}); latency p50 ${f.p50?.toFixed(1)} ms, p99 ${f.p99?.toFixed(1)} ms`,
    );
  }
  return out;
}

export const tasksSection: BenchSection = {
  name: 'tasks',
  description:
    'task enqueue, processing (20,000 no-op jobs, concurrency 10) and enqueue→start latency vs graphile-worker, pg-boss, BullMQ',
  async run(ctx) {
    const makers: [string, () => Promise<Peer>][] = [
      ['pgferry', () => pgferryPeer(ctx.url, 'archive')],
      ['pgferry (delete)', () => pgferryPeer(ctx.url, 'delete')],
      ['graphile-worker', () => graphilePeer(ctx.url)],
      ['pg-boss', () => pgBossPeer(ctx.url)],
    ];
    if (ctx.smoke) ctx.log('BullMQ: not run: smoke mode does not use Redis');
    else makers.push(['BullMQ', bullPeer]);
    const all = await measureAll(ctx, makers);
    const ours = all.get('pgferry');
    const del = all.get('pgferry (delete)');
    if (typeof ours !== 'object' || typeof del !== 'object')
      throw new Error(`pgferry: ${String(ours)} / ${String(del)}`);
    const peers = [...all].filter(([l]) => !l.startsWith('pgferry'));
    const row = (
      operation: string,
      value: number,
      key: keyof Figures,
      unit: string,
      targetPeer?: string,
    ) => {
      for (const [name, f] of peers) {
        if (typeof f === 'string' || f[key] === undefined) continue;
        ctx.report({
          section: 'tasks',
          operation: `${operation} (vs ${name})`,
          value,
          unit,
          baseline: { name, value: f[key]! },
          ...(targetPeer === name ? { target: { ratio: 2 } } : {}),
        });
      }
    };
    row('enqueue, single, 4 clients', ours.single!, 'single', 'jobs/s');
    row('enqueue, batches of 500', ours.batch!, 'batch', 'jobs/s');
    // graphile-worker deletes finished jobs; pgferry with onComplete 'delete'
    // does the same work, so that is the row the 2x target applies to.
    row('process, onComplete delete', del.process!, 'process', 'jobs/s', 'graphile-worker');
    row('process, onComplete archive (default)', ours.process!, 'process', 'jobs/s');
    const gw = all.get('graphile-worker');
    const gwP50 = typeof gw === 'object' ? gw.p50 : undefined;
    // Latency: lower is better, so the bound is graphile-worker's own p50.
    ctx.report({
      section: 'tasks',
      operation: 'enqueue → start latency p50',
      value: ours.p50!,
      unit: 'ms',
      ...(gwP50 !== undefined ? { target: { max: Number(gwP50.toFixed(2)) } } : {}),
    });
    ctx.report({
      section: 'tasks',
      operation: 'enqueue → start latency p99',
      value: ours.p99!,
      unit: 'ms',
    });
    if (gwP50 !== undefined)
      ctx.log(
        `latency target: p50 no worse than graphile-worker's p50 in this run (${gwP50.toFixed(1)} ms)`,
      );
  },
};
