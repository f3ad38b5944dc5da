import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/embedded/server.js';

/** What every bench section gets. */
export interface BenchContext {
  /** URL of a fresh database created for this run (dropped afterwards). */
  url: string;
  /** URL of the server's maintenance database (to create more databases). */
  adminUrl: string;
  /** One iteration, tiny sizes: proves the section runs (CI), measures nothing. */
  smoke: boolean;
  /** Scales a workload size down in smoke mode. */
  size(full: number, smoke?: number): number;
  /** Prints one comparison row and records it for the summary. */
  report(row: BenchRow): void;
  log(msg: string): void;
}

export interface BenchRow {
  section: string;
  operation: string;
  /** pgferry's figure and unit (e.g. rows/s). */
  value: number;
  unit: string;
  /** The baseline measured in the same run, same unit (omit when there is none). */
  baseline?: { name: string; value: number };
  /**
   * The ratio to judge the target by, when the section measured it directly
   * (the median of per-round ratios of interleaved slices, bench/interleave.ts);
   * otherwise value ÷ baseline.value.
   */
  ratio?: number;
  /** Target ratio value/baseline (higher is better), or for latency the bound in `unit`. */
  target?: { ratio?: number; max?: number };
}

export interface BenchSection {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<void>;
}

export interface Server {
  adminUrl: string;
  stop(): Promise<void>;
}

/** DATABASE_URL if set, else an embedded server (durable settings: benchmarks measure real commits). */
export async function startServer(): Promise<Server> {
  if (process.env.DATABASE_URL)
    return { adminUrl: process.env.DATABASE_URL, stop: async () => undefined };
  const dataDir = join(tmpdir(), `pgferry-bench-${process.pid}`);
  const server: EmbeddedPostgres = await startEmbeddedPostgres({ dataDir, persistent: false });
  return {
    adminUrl: server.url,
    stop: async () => {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A connected pg.Client whose session may be ended under it (the bench drops its databases). */
export async function openClient(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

export async function createDatabase(
  adminUrl: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `pgferry_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  // Its sessions skip zero-filling new WAL files. A fresh server (the
  // embedded one the bench starts) makes each 16 MB WAL file the first time
  // it needs it, writing 16 MB of zeros and syncing them: ~55 ms here, paid
  // by whichever measured slice crosses into the file; a long-running server
  // recycles old files instead. Slices of 3–6 MB of WAL each then split into
  // fast and slow ones by WAL position alone, and since a fresh server starts
  // at the same position every time, the same slices of the same variant
  // were slow in every run (read 100 + archive, 4 consumers, on the embedded
  // server: per-round ratios of ~0.6, 1.0 and ~1.6, median 0.69× in three
  // runs; with zero-filling off, 0.9–1.1). Needs a superuser (a SUSET
  // setting); without one the server's setting stays.
  try {
    await admin.query(`ALTER DATABASE ${name} SET wal_init_zero = off`);
  } catch {
    // not a superuser
  }
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = '/' + name;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      // A section's pools resolve end() before their sockets are gone; give
      // them a moment, so FORCE does not kill a connection that is closing
      // (an unhandled 'error' on a pool client that has no listener).
      for (let i = 0; i < 100; i++) {
        const r = await c.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1`,
          [name],
        );
        if (r.rows[0]!.n === 0) break;
        await new Promise((res) => setTimeout(res, 20));
      }
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Runs `worker(i)` on `clients` concurrent loops until `total` units are done; returns units/s. */
export async function throughput(
  total: number,
  clients: number,
  unitsPerCall: number,
  /** Returns how many units it did when that is a number; anything else counts `unitsPerCall`. */
  call: (client: number) => Promise<unknown>,
): Promise<number> {
  let remaining = total;
  let done = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      while (remaining > 0) {
        remaining -= unitsPerCall;
        const n = await call(i);
        done += typeof n === 'number' ? n : unitsPerCall;
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  return done / secs;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Runs `fn` (returning [ours, baseline]) 3 times (once in smoke runs), interleaved; the medians. */
export async function rounds(
  ctx: BenchContext,
  fn: () => Promise<[number, number]>,
): Promise<[number, number]> {
  const ours: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < (ctx.smoke ? 1 : 3); i++) {
    const [a, b] = await fn();
    ours.push(a);
    base.push(b);
  }
  return [median(ours), median(base)];
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}
