import { summarize, type Stats } from "./stats.js";

export interface InterleaveOptions {
  /** Rounds discarded before measuring. */
  warmup: number;
  /** Measured rounds (≥ 5 for a median worth reporting). */
  rounds: number;
}

/**
 * The order of the variants in round `round`: rotated by ⌊round / 2⌋, and reversed in odd rounds.
 * Over 2n rounds each of n variants runs first twice and both before and after every other one
 * (a rotation alone keeps the cyclic order: B would always follow A).
 */
export function roundOrder<K>(names: readonly K[], round: number): K[] {
  const shift = Math.floor(round / 2) % names.length;
  const rotated = [...names.slice(shift), ...names.slice(0, shift)];
  return round % 2 === 1 ? rotated.reverse() : rotated;
}

/**
 * Runs every variant once per round, in `roundOrder` (so no variant always runs first or after
 * the same neighbour), discards the warm-up rounds and returns the raw samples and their
 * statistics. A variant returns the figure it measured (e.g. ms or tokens/s); when it returns
 * nothing its wall time in ms is used.
 */
export async function interleave<K extends string>(
  variants: Record<K, () => Promise<number | void> | number | void>,
  options: InterleaveOptions,
): Promise<Record<K, { samples: number[]; stats: Stats }>> {
  const names = Object.keys(variants) as K[];
  const samples = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (let round = 0; round < options.warmup + options.rounds; round++) {
    for (const name of roundOrder(names, round)) {
      const start = performance.now();
      const returned = await variants[name]();
      const value = typeof returned === "number" ? returned : performance.now() - start;
      if (round >= options.warmup) samples[name].push(value);
    }
  }
  return Object.fromEntries(names.map((n) => [n, { samples: samples[n], stats: summarize(samples[n]) }])) as Record<
    K,
    { samples: number[]; stats: Stats }
  >;
}
