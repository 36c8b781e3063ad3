/**
 * SVD of a matrix given in factored low-rank form, without ever forming it.
 */
import { matmul, matmulTransB, type Dense } from "./matmul.js";
import { qrThin } from "./qr.js";
import { svdThin, type ThinSvd } from "./svd.js";

export interface LowRankSvd extends ThinSvd {
  /** All R singular values of the product (σ  [R]), for the discarded-energy report. */
  allSingularValues: Float64Array;
}

/**
 * Truncated SVD of M = L·Rᵀ from its factors.
 *
 * Semantics: with L [m,R], Rf [n,R] and M = L·Rfᵀ [m,n]:
 *   L = Q_L·R_L, Rf = Q_R·R_R (thin QR), core C = R_L·R_Rᵀ [R,R] = U_c·diag(σ)·V_cᵀ,
 *   so M = (Q_L·U_c)·diag(σ)·(Q_R·V_c)ᵀ exactly; the first `rank` triplets are returned
 *   (U [m,rank], σ [rank], V [n,rank]), plus all R singular values.
 * Requires R ≤ m and R ≤ n (otherwise M is small: use svdThin on the dense product).
 * Cost O((m + n)·R² + R³): a 4096×4096 target with R = 64 never touches 4096² numbers.
 */
export function lowRankSvd(left: Dense, right: Dense, m: number, n: number, R: number, rank: number): LowRankSvd {
  if (R > m || R > n) throw new RangeError(`lowRankSvd: inner rank ${R} exceeds a side (${m}×${n}); use svdThin on the dense product`);
  if (!Number.isInteger(rank) || rank < 0 || rank > R) throw new RangeError(`lowRankSvd: rank must be an integer in [0, ${R}], got ${rank}`);
  const { q: qL, r: rL } = qrThin(left, m, R); // [m,R], [R,R]
  const { q: qR, r: rR } = qrThin(right, n, R); // [n,R], [R,R]
  const core = matmulTransB(rL, rR, R, R, R); // C = R_L·R_Rᵀ  [R, R]
  const c = svdThin(core, R, R); // U_c [R,R], σ [R], V_c [R,R]
  const uc = takeColumns(c.u, R, R, rank); // [R, rank]
  const vc = takeColumns(c.v, R, R, rank); // [R, rank]
  return {
    rank,
    u: matmul(qL, uc, m, R, rank), // [m, rank]
    s: c.s.slice(0, rank),
    v: matmul(qR, vc, n, R, rank), // [n, rank]
    allSingularValues: c.s,
  };
}

/** First k columns. Semantics: Y[i,j] = X[i,j] for j < k; X [rows, cols] → Y [rows, k] (X itself when k = cols). */
export function takeColumns(x: Float64Array, rows: number, cols: number, k: number): Float64Array {
  if (k === cols) return x;
  const out = new Float64Array(rows * k);
  for (let i = 0; i < rows; i++) for (let j = 0; j < k; j++) out[i * k + j] = x[i * cols + j];
  return out;
}
