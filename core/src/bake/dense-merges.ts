/**
 * Pure elementwise helpers of the offline merge strategies (TIES, DARE, magnitude pruning),
 * acting on full per-module deltas ΔWᵢ = sᵢ·Bᵢ·Aᵢ  [out, in] (row-major float32).
 */
import type { Rng } from "../random/index.js";

/** How many entries a trim at this density keeps. Semantics: k = ⌊density · numel⌋ (as PEFT). */
export function keepCount(density: number, numel: number): number {
  return Math.floor(density * numel);
}

/**
 * Keeps the k largest-magnitude entries and zeroes the rest.
 * Semantics: y[j] = x[j] if |x[j]| is among the k largest of |x|, else 0, with
 * k = ⌊density·numel⌋; entries tied at the threshold are kept lowest index first, so exactly
 * k entries survive (fewer only if some of them are 0). Cost O(numel) (quickselect).
 */
export function trimTopK(x: Float32Array, density: number): Float32Array {
  const n = x.length;
  const k = keepCount(density, n);
  if (k >= n) return x.slice();
  const y = new Float32Array(n);
  if (k <= 0) return y;
  const mags = new Float32Array(n);
  for (let j = 0; j < n; j++) mags[j] = Math.abs(x[j]);
  const threshold = kthLargest(mags, k); // mags is scrambled from here on
  let above = 0;
  for (let j = 0; j < n; j++) if (Math.abs(x[j]) > threshold) above++;
  let tiesLeft = k - above; // entries equal to the threshold still to keep
  for (let j = 0; j < n; j++) {
    const v = Math.abs(x[j]);
    if (v > threshold) y[j] = x[j];
    else if (v === threshold && tiesLeft > 0) {
      y[j] = x[j];
      tiesLeft--;
    }
  }
  return y;
}

/**
 * Semantics: the k-th largest value, sortDescending(values)[k − 1] (1 ≤ k ≤ length), by iterative quickselect with a
 * median-of-three pivot and a three-way partition (fast on many equal values).
 * Reorders `values` in place.
 */
export function kthLargest(values: Float32Array, k: number): number {
  if (!(k >= 1 && k <= values.length)) throw new RangeError(`kthLargest: k must be in [1, ${values.length}], got ${k}`);
  let lo = 0;
  let hi = values.length - 1;
  const target = k - 1; // position in descending order
  for (;;) {
    if (lo === hi) return values[lo];
    const mid = lo + ((hi - lo) >> 1);
    const a = values[lo];
    const b = values[mid];
    const c = values[hi];
    const pivot = a > b ? (b > c ? b : a > c ? c : a) : a > c ? a : b > c ? c : b;
    // Dutch flag, descending: [lo, gt) > pivot, [gt, i) == pivot, (lt, hi] < pivot.
    let gt = lo;
    let i = lo;
    let lt = hi;
    while (i <= lt) {
      const v = values[i];
      if (v > pivot) {
        values[i] = values[gt];
        values[gt] = v;
        gt++;
        i++;
      } else if (v < pivot) {
        values[i] = values[lt];
        values[lt] = v;
        lt--;
      } else i++;
    }
    if (target < gt) hi = gt - 1;
    else if (target <= lt) return pivot;
    else lo = lt + 1;
  }
}

/**
 * DARE's random drop.
 * Semantics: y[j] = u_j < density ? x[j] / density : 0, with u_j = rng.nextFloat() drawn for
 * every entry in row-major order (so one draw per entry, zeros included). density = 1 keeps
 * everything unchanged.
 */
export function dareDrop(x: Float32Array, density: number, rng: Rng): Float32Array {
  const y = new Float32Array(x.length);
  const inv = 1 / density;
  for (let j = 0; j < x.length; j++) {
    const u = rng.nextFloat();
    if (u < density) y[j] = density === 1 ? x[j] : x[j] * inv;
  }
  return y;
}

function checkTerms(xs: readonly Float32Array[], weights: readonly number[]): number {
  if (xs.length !== weights.length) throw new RangeError(`merge: ${xs.length} deltas but ${weights.length} weights`);
  if (xs.length === 0) throw new RangeError("merge: no deltas");
  const n = xs[0].length;
  for (const x of xs) if (x.length !== n) throw new RangeError(`merge: deltas differ in size (${x.length} vs ${n})`);
  return n;
}

/** Σᵢ wᵢ·xᵢ[j], accumulated in float64. */
function weightedEntry(xs: readonly Float32Array[], weights: readonly number[], j: number): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += weights[i] * xs[i][j];
  return s;
}

/**
 * Weighted sum.
 * Semantics: y[j] = Σᵢ wᵢ·xᵢ[j]  (float64 accumulation).
 */
export function weightedSum(xs: readonly Float32Array[], weights: readonly number[]): Float32Array {
  const n = checkTerms(xs, weights);
  const y = new Float32Array(n);
  for (let j = 0; j < n; j++) y[j] = weightedEntry(xs, weights, j);
  return y;
}

/**
 * TIES sign election and disjoint merge (on already trimmed or dropped deltas).
 * Semantics, per entry j, with tᵢ = wᵢ·xᵢ[j]:
 *   σ = sign(Σᵢ tᵢ);  agreeing = { i : sign(tᵢ) = σ ≠ 0 };
 *   y[j] = Σ_{i∈agreeing} tᵢ / max(1, |agreeing|)   (0 when σ = 0).
 * This is the TIES paper's disjoint mean (as in PEFT): where all n terms agree it gives
 * (Σ wᵢ·xᵢ)/n, where one term alone is non-zero it gives that term.
 */
export function tiesMerge(xs: readonly Float32Array[], weights: readonly number[]): Float32Array {
  const n = checkTerms(xs, weights);
  const y = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const total = weightedEntry(xs, weights, j);
    if (total === 0) continue;
    let sum = 0;
    let count = 0;
    for (let i = 0; i < xs.length; i++) {
      const t = weights[i] * xs[i][j];
      if (total > 0 ? t > 0 : t < 0) {
        sum += t;
        count++;
      }
    }
    y[j] = sum / Math.max(1, count);
  }
  return y;
}
