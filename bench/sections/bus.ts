import pg from 'pg';
import { QueueClient } from '../../src/queue/client.js';
import { migrate } from '../../src/migrate/migrator.js';
import { Bus, DirectBackend, IsolatedBackend, type BusBackend } from '../../src/bus/index.js';
import { percentile, type BenchContext, type BenchSection } from '../harness.js';
import { fanoutFloor } from '../bus-floor.js';

// Bus figures (issues 7 and 14): publish → delivered latency p50/p99 with 2
// and 10 members, and fan-out throughput (deliveries/s), for both backends.
// Targets (issue 14): p50 ≤ 2 ms with 10 members, fan-out ≥ 0.8× the raw SQL. Each
// member has its own pool; being in one process, the members share one
// LISTEN connection (src/bus/wake-hub.ts), which members in separate
// processes cannot (bench/README.md gives that case's figures). Baselines,
// same run, same database:
//   latency    — a bare NOTIFY → LISTEN round trip (the floor of any
//                Postgres wake-up), measured the same way; and, printed
//                beside the 10-member rows, the plain-SQL floor of a durable
//                fan-out to per-member tables (bench/bus-floor.ts);
//   throughput — the same fan-out in hand-written queue-engine SQL: one
//                `SELECT send(q, m) FROM unnest(peers)` per message, and
//                receivers looping read + archive on their own connections.

type Kind = 'direct' | 'isolated';
interface Stamp {
  i: number;
  t: number;
}

const jitter = (): Promise<void> => new Promise((r) => setTimeout(r, 5 + Math.random() * 15));

function backendFor(
  kind: Kind,
  url: string,
  closers: (() => Promise<void>)[],
  durablePublish: boolean,
): BusBackend {
  if (kind === 'direct') {
    const client = new QueueClient({ connectionString: url, maxConnections: 3 });
    closers.push(() => client.close());
    return new DirectBackend({ client, durablePublish });
  }
  const backend = new IsolatedBackend({ connectionString: url, durablePublish });
  closers.push(() => backend.close());
  return backend;
}

async function withMembers<R>(
  kind: Kind,
  url: string,
  n: number,
  fn: (buses: Bus<Stamp>[]) => Promise<R>,
  durablePublish = true,
): Promise<R> {
  const closers: (() => Promise<void>)[] = [];
  const buses: Bus<Stamp>[] = [];
  try {
    for (let m = 0; m < n; m++) {
      const bus = new Bus<Stamp>({
        backend: backendFor(kind, url, closers, durablePublish),
        channel: `bench-${kind}-${n}`,
        batchSize: 100,
      });
      buses.push(bus);
      await bus.start();
    }
    return await fn(buses);
  } finally {
    for (const b of buses) await b.stop();
    for (const c of closers) await c();
  }
}

/** Member 0 publishes `count` stamped messages, spaced; every other member records arrival − stamp. */
async function busLatency(
  kind: Kind,
  url: string,
  n: number,
  count: number,
  durablePublish = true,
): Promise<number[]> {
  return withMembers(
    kind,
    url,
    n,
    async (buses) => {
      const latencies: number[] = [];
      let expected = 0;
      let wake: (() => void) | undefined;
      for (const b of buses.slice(1)) {
        b.subscribe((m) => {
          latencies.push(performance.now() - m.t);
          if (latencies.length >= expected) wake?.();
        });
      }
      for (let i = 0; i < count; i++) {
        await jitter();
        expected = (i + 1) * (n - 1);
        const done = new Promise<void>((r) => (wake = r));
        await buses[0]!.publish({ i, t: performance.now() });
        if (latencies.length < expected) await done;
      }
      return latencies.sort((a, b) => a - b);
    },
    durablePublish,
  );
}

/** Member 0 publishes `count` messages, 4 in flight; deliveries/s until every other member has them all. */
async function busThroughput(kind: Kind, url: string, n: number, count: number): Promise<number> {
  return withMembers(kind, url, n, async (buses) => {
    const want = count * (n - 1);
    let got = 0;
    let finish!: () => void;
    const all = new Promise<void>((r) => (finish = r));
    for (const b of buses.slice(1)) {
      b.subscribe(() => {
        if (++got === want) finish();
      });
    }
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < count) await buses[0]!.publish({ i: next++, t: 0 });
      }),
    );
    await all;
    return want / ((performance.now() - t0) / 1000);
  });
}

/** NOTIFY on one connection → LISTEN callback on another, spaced like the bus runs. */
async function notifyLatency(url: string, count: number): Promise<number[]> {
  const listener = new pg.Client({ connectionString: url });
  const sender = new pg.Client({ connectionString: url });
  await listener.connect();
  await sender.connect();
  try {
    await listener.query('LISTEN bench_bus_baseline');
    const latencies: number[] = [];
    for (let i = 0; i < count; i++) {
      await jitter();
      const arrived = new Promise<void>((r) => listener.once('notification', () => r()));
      const t = performance.now();
      await sender.query(`SELECT pg_notify('bench_bus_baseline', '')`);
      await arrived;
      latencies.push(performance.now() - t);
    }
    return latencies.sort((a, b) => a - b);
  } finally {
    await listener.end();
    await sender.end();
  }
}

/** The same fan-out in raw queue-engine SQL. */
async function rawThroughput(url: string, n: number, count: number): Promise<number> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const peers = Array.from({ length: n - 1 }, (_, i) => `bench_raw_${n}_${i}`);
  const conns: pg.Client[] = [];
  try {
    for (const q of peers) await admin.query(`SELECT pgmq.create($1)`, [q]);
    const want = count * peers.length;
    let got = 0;
    let stop = false;
    const readers = peers.map(async (q) => {
      const c = new pg.Client({ connectionString: url });
      conns.push(c);
      await c.connect();
      while (!stop) {
        const r = await c.query<{ msg_id: string }>(`SELECT msg_id FROM pgmq.read($1, 30, 100)`, [
          q,
        ]);
        if (r.rows.length === 0) {
          await new Promise((res) => setTimeout(res, 1));
          continue;
        }
        await c.query(`SELECT pgmq.archive($1, $2::bigint[])`, [q, r.rows.map((x) => x.msg_id)]);
        got += r.rows.length;
        if (got >= want) stop = true;
      }
    });
    const senders = Array.from({ length: 4 }, () => new pg.Client({ connectionString: url }));
    for (const s of senders) {
      conns.push(s);
      await s.connect();
    }
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      senders.map(async (s) => {
        while (next++ < count) {
          await s.query(`SELECT pgmq.send(q, $2::jsonb) FROM unnest($1::text[]) AS q`, [
            peers,
            JSON.stringify({ i: next, t: 0 }),
          ]);
        }
      }),
    );
    await Promise.all(readers);
    return want / ((performance.now() - t0) / 1000);
  } finally {
    for (const c of conns) await c.end().catch(() => undefined);
    for (const q of peers) await admin.query(`SELECT pgmq.drop_queue($1)`, [q]);
    await admin.end();
  }
}

async function run(ctx: BenchContext): Promise<void> {
  await migrate({ connectionString: ctx.url, components: ['queue', 'bus'] });
  const latencyCount = ctx.size(300, 3);
  const throughputCount = ctx.size(1000, 5);
  const floor = await notifyLatency(ctx.url, latencyCount);
  const misses: string[] = [];
  const latencyRows = async (kind: Kind, n: number, durablePublish: boolean): Promise<void> => {
    const lat = await busLatency(kind, ctx.url, n, latencyCount, durablePublish);
    const label = `${kind}, ${n} members${durablePublish ? '' : ', durablePublish false'}`;
    for (const p of [50, 99]) {
      ctx.report({
        section: 'bus',
        operation: `${label}: publish → delivered p${p}`,
        value: percentile(lat, p),
        unit: 'ms',
        baseline: { name: `NOTIFY→LISTEN p${p}`, value: percentile(floor, p) },
      });
    }
    const p50 = percentile(lat, 50);
    if (n === 10 && durablePublish && p50 > 2) misses.push(`${label}: p50 ${p50.toFixed(2)} ms`);
  };
  for (const n of [2, 10]) {
    const raw = await rawThroughput(ctx.url, n, throughputCount);
    for (const kind of ['direct', 'isolated'] as const) {
      await latencyRows(kind, n, true);
      const tput = await busThroughput(kind, ctx.url, n, throughputCount);
      if (n === 10 && tput < 0.8 * raw) {
        misses.push(`${kind}, 10 members: fan-out ${(tput / raw).toFixed(2)}× raw`);
      }
      ctx.report({
        section: 'bus',
        operation: `${kind}, ${n} members: fan-out deliveries/s`,
        value: tput,
        unit: 'msg/s',
        baseline: { name: 'raw queue SQL fan-out', value: raw },
      });
    }
  }
  const fan = await fanoutFloor(ctx.url, 10, latencyCount, jitter);
  for (const p of [50, 99]) {
    ctx.report({
      section: 'bus',
      operation: `plain SQL floor, 10 members: publish → delivered p${p} (no target)`,
      value: percentile(fan, p),
      unit: 'ms',
    });
  }
  ctx.log(
    'plain SQL floor: one durable INSERT per peer table + NOTIFY → one LISTEN → a SELECT per peer on its own connection',
  );
  // Without the publish's WAL flush (see docs/bus.md on durablePublish).
  for (const kind of ['direct', 'isolated'] as const) await latencyRows(kind, 10, false);
  ctx.log(
    `target: 10 members, publish → delivered p50 ≤ 2 ms and fan-out ≥ 0.8× raw SQL: ${misses.length === 0 ? 'met for every row' : `MISSED for ${misses.join(', ')}`}`,
  );
}

export const busSection: BenchSection = {
  name: 'bus',
  description:
    'channel bus: publish → delivered latency (2 and 10 members) and fan-out throughput, direct and isolated',
  run,
};
