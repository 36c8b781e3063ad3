/** Summary statistics of repeated measurements. */
export interface Stats {
  n: number;
  median: number;
  /** Interquartile range: p75 − p25 (the spread reported beside medians). */
  iqr: number;
  min: number;
  max: number;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarize(values: readonly number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: quantile(sorted, 0.5),
    iqr: quantile(sorted, 0.75) - quantile(sorted, 0.25),
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

export function percentile(values: readonly number[], q: number): number {
  return quantile([...values].sort((a, b) => a - b), q);
}

/**
 * Median of per-round ratios a/b: both sides measured in the same round, so machine noise
 * that lasts longer than one round cancels.
 */
export function pairedRatio(a: readonly number[], b: readonly number[]): Stats {
  const n = Math.min(a.length, b.length);
  const ratios: number[] = [];
  for (let i = 0; i < n; i++) ratios.push(a[i] / b[i]);
  return summarize(ratios);
}

/** The same statistics for values multiplied by k (k > 0). */
export function scaleStats(stats: Stats, k: number): Stats {
  return { n: stats.n, median: stats.median * k, iqr: stats.iqr * k, min: stats.min * k, max: stats.max * k };
}

/**
 * Per round, the median across several sessions of one kind: `bySession[k][round]` → one value per
 * round. A set of sessions built the same way stands for that kind, so one session's unlucky memory
 * placement does not decide a ratio (case 1).
 */
export function medianAcross(bySession: ReadonlyArray<readonly number[]>): number[] {
  const rounds = Math.min(...bySession.map((s) => s.length));
  return Array.from({ length: rounds }, (_, r) => summarize(bySession.map((s) => s[r])).median);
}

/** Per round, the largest ÷ the smallest value across sessions (1 with one session): how far identical sessions differ. */
export function spreadAcross(bySession: ReadonlyArray<readonly number[]>): Stats {
  const rounds = Math.min(...bySession.map((s) => s.length));
  const ratios = Array.from({ length: rounds }, (_, r) => {
    const values = bySession.map((s) => s[r]);
    return Math.max(...values) / Math.min(...values);
  });
  return summarize(ratios);
}
