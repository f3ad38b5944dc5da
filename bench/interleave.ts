import pg from 'pg';
import { median, type BenchContext } from './harness.js';

/** One side of a comparison: runs one short slice of its workload and returns its rate. */
export type Slice = () => Promise<number>;

export interface Interleaved {
  /** Each variant's median rate over the rounds. */
  rate: Record<string, number>;
  /**
   * Each variant's median of its per-round ratio to the baseline (the last
   * variant): the figure to judge a target by. Slices of one round run
   * back to back, so a drift of the machine's speed over the run (other
   * work starting, a checkpoint) moves both sides of a ratio alike.
   */
  ratio: Record<string, number>;
}

/**
 * Runs every variant once per round, the order rotating between rounds
 * (and reversed every other cycle, so no variant is always first or last),
 * after one warm-up slice each; logs each variant's per-round ratios to the
 * baseline (the last variant) with their spread.
 */
export async function interleaved(
  ctx: BenchContext,
  label: string,
  variants: Record<string, Slice>,
  rounds: number,
  { warmUp = true } = {},
): Promise<Interleaved> {
  const names = Object.keys(variants);
  const rates: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  if (warmUp) for (const n of names) await variants[n]!(); // connections, prepared statements
  for (let r = 0; r < rounds; r++) {
    const shift = r % names.length;
    const order = [...names.slice(shift), ...names.slice(0, shift)];
    if (Math.floor(r / names.length) % 2 === 1) order.reverse();
    for (const n of order) rates[n]!.push(await variants[n]!());
  }
  const base = names[names.length - 1]!;
  const ratio: Record<string, number> = { [base]: 1 };
  for (const n of names.slice(0, -1)) {
    const rs = rates[n]!.map((v, i) => v / rates[base]![i]!).sort((a, b) => a - b);
    ratio[n] = median(rs);
    ctx.log(
      `${label}, ${n} ÷ ${base} per round: ${rs.map((x) => x.toFixed(2)).join(' ')} (median ${ratio[n].toFixed(2)})`,
    );
  }
  return { rate: Object.fromEntries(names.map((n) => [n, median(rates[n]!)])), ratio };
}

/**
 * Lets the section's database skip zero-filling new WAL files
 * (`wal_init_zero = off` for its sessions). A fresh server (the embedded one
 * the bench starts) makes each 16 MB WAL file the first time it needs it,
 * writing 16 MB of zeros and syncing them: ~55 ms here, paid by whichever
 * slice crosses into the file; a long-running server recycles old files
 * instead. Slices of 3–6 MB of WAL each then split into fast and slow ones
 * by WAL position alone, and since a fresh server starts at the same
 * position every time, the same slices of the same variant are slow in
 * every run: per-round ratios of ~0.6, 1.0 and ~1.6 whose median went to
 * whichever side drew more crossings (read 100 + archive, 4 consumers, on
 * the embedded server: 0.69× in three runs; with zero-filling off its
 * rounds stay within 0.9–1.1 on a quiet machine). Needs a superuser;
 * without one, nothing changes. Call it before the section opens its
 * connections (it applies to sessions that start afterwards).
 */
export async function skipWalZeroFill(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const db = (await c.query<{ d: string }>('SELECT current_database() AS d')).rows[0]!.d;
    await c.query(`ALTER DATABASE "${db.replace(/"/g, '""')}" SET wal_init_zero = off`);
  } catch {
    // not a superuser: the server's setting stays
  } finally {
    await c.end();
  }
}
