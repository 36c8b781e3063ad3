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
    for (let c = j; c < n; c++) {
      const cc = c * m;
      let dot = 0;
      for (let i = j; i < m; i++) dot += vs[cj + i] * w[cc + i];
      const f = beta * dot;
      if (f === 0) continue;
      for (let i = j; i < m; i++) w[cc + i] -= f * vs[cj + i];
    }
  }
  const r = new Float64Array(n * n); // [n, n]
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) r[i * n + j] = w[j * m + i];
  // Q = H_0·H_1·…·H_{n-1}·I[:, :n], applied right to left on column-major qc.
  const qc = new Float64Array(m * n);
  for (let j = 0; j < n; j++) qc[j * m + j] = 1;
  for (let h = n - 1; h >= 0; h--) {
    const beta = betas[h];
    if (beta === 0) continue;
    const ch = h * m;
    for (let c = h; c < n; c++) {
      // columns c < h of H_{h+1}…I are still e_c, untouched by H_h (v_h is zero above h)
      const cc = c * m;
      let dot = 0;
      for (let i = h; i < m; i++) dot += vs[ch + i] * qc[cc + i];
      const f = beta * dot;
      if (f === 0) continue;
      for (let i = h; i < m; i++) qc[cc + i] -= f * vs[ch + i];
    }
  }
  const q = new Float64Array(m * n); // [m, n]
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) q[i * n + j] = qc[j * m + i];
  return { q, r };
}
