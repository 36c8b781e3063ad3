import { summarize, type Stats } from "./stats.js";

export interface InterleaveOptions {
  /** Rounds discarded before measuring. */
  warmup: number;
  /** Measured rounds (≥ 5 for a median worth reporting). */
  rounds: number;
}

/**
 * Runs every variant once per round, rotating the order each round (so no variant always runs
 * first or after the same neighbour), discards the warm-up rounds and returns the raw samples and
 * their statistics. A variant returns the figure it measured (e.g. ms or tokens/s); when it
 * returns nothing its wall time in ms is used.
 */
export async function interleave<K extends string>(
  variants: Record<K, () => Promise<number | void> | number | void>,
  options: InterleaveOptions,
): Promise<Record<K, { samples: number[]; stats: Stats }>> {
  const names = Object.keys(variants) as K[];
  const samples = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (let round = 0; round < options.warmup + options.rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length];
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
