/**
 * Exact thin SVD of a dense matrix, via ml-matrix (Golub–Kahan–Reinsch, the JAMA algorithm).
 */
import { Matrix, SingularValueDecomposition } from "ml-matrix";
import type { Dense } from "./matmul.js";

export interface ThinSvd {
  /** Number of singular triplets kept, p. */
  rank: number;
  /** U  [m, p], orthonormal columns, row-major. */
  u: Float64Array;
  /** σ  [p], non-increasing, ≥ 0. */
  s: Float64Array;
  /** V  [n, p], orthonormal columns, row-major. */
  v: Float64Array;
}

/**
 * Exact thin SVD.
 * Semantics: A = U·diag(σ)·Vᵀ with A [m,n], p = min(m,n), σ sorted non-increasing.
 * Cost O(m·n·min(m,n)) in float64 (ml-matrix): fine up to a few hundred per side; use
 * lowRankSvd / randomizedSvd for large low-rank or truncated problems.
 */
export function svdThin(a: Dense, m: number, n: number): ThinSvd {
  if (a.length !== m * n) throw new RangeError(`svdThin: expected ${m}×${n} = ${m * n} elements, got ${a.length}`);
  const p = Math.min(m, n);
  if (p === 0) return { rank: 0, u: new Float64Array(0), s: new Float64Array(0), v: new Float64Array(0) };
  const mat = new Matrix(m, n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) mat.set(i, j, a[i * n + j]);
  const dec = new SingularValueDecomposition(mat, { autoTranspose: true });
  const sigma = dec.diagonal;
  const um = dec.leftSingularVectors;
  const vm = dec.rightSingularVectors;
  // Sort descending (JAMA already does; kept explicit so the contract does not depend on it).
  const order = Array.from({ length: p }, (_, k) => k).sort((x, y) => sigma[y] - sigma[x]);
  const u = new Float64Array(m * p); // [m, p]
  const v = new Float64Array(n * p); // [n, p]
  const s = new Float64Array(p); // [p]
  for (let k = 0; k < p; k++) {
    const src = order[k];
    s[k] = Math.max(0, sigma[src]);
    for (let i = 0; i < m; i++) u[i * p + k] = um.get(i, src);
    for (let j = 0; j < n; j++) v[j * p + k] = vm.get(j, src);
  }
  return { rank: p, u, s, v };
}
