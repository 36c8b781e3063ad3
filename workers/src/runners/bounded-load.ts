/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2018), on the
 * rendezvous ranking: a request keeps its mix's first-choice runner (adapter affinity: its
 * adapters are cached and its composition is built there) unless that runner's reported load is
 * above `factor` × the mean load of the candidates; then the next runner in rank order within the
 * bound is tried first. Over-bound runners are not dropped: they stay in the order, last.
 *
 * Semantics: loads are what runners last reported (LOAD_HEADER, /healthz: requests queued +
 * running); unknown loads (no report yet, or stale) are never skipped and do not count in the
 * mean. limit = max(floor, factor · mean of the known loads); a runner is over-bound iff its
 * load > limit. With fewer than 2 known loads nothing moves. The result is a stable partition
 * of `ranked`: within-bound runners in rank order, then over-bound ones in rank order.
 * Cost: O(n) over the candidates.
 */

/** c in "c × the mean": a first choice with 25 % more load than the mean is skipped (the paper's ε = 0.25). */
export const BOUNDED_LOAD_FACTOR = 1.25;
/**
 * Loads at or below this never count as overloaded: a batching runner serves a few rows for
 * about the cost of one (decode steps are memory-bound), so moving a mix off its cached runner
 * to save a row or two costs more than it gains.
 */
export const BOUNDED_LOAD_FLOOR = 4;

export interface BoundedLoadOptions {
  factor?: number;
  floor?: number;
}

export function boundedLoadOrder(
  ranked: readonly string[],
  loadOf: (runner: string) => number | null,
  opts: BoundedLoadOptions = {},
): string[] {
  const factor = opts.factor ?? BOUNDED_LOAD_FACTOR;
  const floor = opts.floor ?? BOUNDED_LOAD_FLOOR;
  const known = ranked.map(loadOf).filter((l): l is number => l !== null);
  if (known.length < 2) return [...ranked];
  const mean = known.reduce((a, b) => a + b, 0) / known.length;
  const limit = Math.max(floor, factor * mean);
  const over = (r: string) => {
    const load = loadOf(r);
    return load !== null && load > limit;
  };
  return [...ranked.filter((r) => !over(r)), ...ranked.filter(over)];
}
