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
