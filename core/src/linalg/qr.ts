/**
 * Thin QR decomposition by Householder reflections (float64).
 */
import type { Dense } from "./matmul.js";

export interface ThinQr {
  /** Q  [m, n], orthonormal columns (QᵀQ = I), row-major. */
  q: Float64Array;
  /** R  [n, n], upper triangular, row-major. */
  r: Float64Array;
}

/**
 * One Householder reflection of one column: x ← x − β·(vᵀx)·v over rows from..m−1, where x is the
 * column at `xAt` of column-major `x` and v the column at `vAt` of `vs` (zero above `from`).
 * Cost: 4·(m − from) flops.
 */
function reflectColumn(x: Float64Array, xAt: number, vs: Float64Array, vAt: number, beta: number, from: number, m: number): void {
  let dot = 0;
  for (let i = from; i < m; i++) dot += vs[vAt + i] * x[xAt + i];
  const f = beta * dot;
  if (f === 0) return;
  for (let i = from; i < m; i++) x[xAt + i] -= f * vs[vAt + i];
}

/**
 * Thin QR of a tall matrix.
 * Semantics: A = Q·R with A [m,n] (m ≥ n), QᵀQ = I_n, R upper triangular.
 * Rank-deficient and zero columns are fine (the reflector is skipped, R gets a 0 on the
 * diagonal, Q stays orthonormal). Cost ≈ 4·m·n² flops (factor + forming Q).
 */
export function qrThin(a: Dense, m: number, n: number): ThinQr {
  if (a.length !== m * n) throw new RangeError(`qrThin: expected ${m}×${n} = ${m * n} elements, got ${a.length}`);
  if (m < n) throw new RangeError(`qrThin: needs rows ≥ columns, got ${m}×${n}`);
  // Column-major working copy: column j is w[j*m .. j*m+m).
  const w = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) w[j * m + i] = a[i * n + j];
  const vs = new Float64Array(m * n); // Householder vectors, column j holds v_j (zeros above j)
  const betas = new Float64Array(n); // H_j = I − β_j·v_j·v_jᵀ (β_j = 0: identity)
  for (let j = 0; j < n; j++) {
    const cj = j * m;
    let norm2 = 0;
    for (let i = j; i < m; i++) norm2 += w[cj + i] * w[cj + i];
    if (norm2 === 0) continue;
    const norm = Math.sqrt(norm2);
    const x0 = w[cj + j];
    const alpha = x0 >= 0 ? -norm : norm; // avoids cancellation in v0 = x0 − α
    let vnorm2 = 0;
    for (let i = j; i < m; i++) {
      const vi = i === j ? x0 - alpha : w[cj + i];
      vs[cj + i] = vi;
      vnorm2 += vi * vi;
    }
    if (vnorm2 === 0) continue;
    const beta = 2 / vnorm2;
    betas[j] = beta;
    // Apply H_j to columns j..n-1.
    for (let c = j; c < n; c++) reflectColumn(w, c * m, vs, cj, beta, j, m);
  }
  const r = new Float64Array(n * n); // [n, n]
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) r[i * n + j] = w[j * m + i];
  // Q = H_0·H_1·…·H_{n-1}·I[:, :n], applied right to left on column-major qc.
  const qc = new Float64Array(m * n);
  for (let j = 0; j < n; j++) qc[j * m + j] = 1;
  for (let h = n - 1; h >= 0; h--) {
    const beta = betas[h];
    if (beta === 0) continue;
    // Columns c < h of H_{h+1}…I are still e_c, untouched by H_h (v_h is zero above h).
    for (let c = h; c < n; c++) reflectColumn(qc, c * m, vs, h * m, beta, h, m);
  }
  const q = new Float64Array(m * n); // [m, n]
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) q[i * n + j] = qc[j * m + i];
  return { q, r };
}
