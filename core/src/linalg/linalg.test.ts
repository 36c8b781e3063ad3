import { describe, expect, it } from "vitest";
import { createRng, randomUniform } from "../random/index.js";
import { frobeniusSquared, matmul, matmulTransA, matmulTransB, relativeError, transpose } from "./matmul.js";
import { qrThin } from "./qr.js";
import { svdThin } from "./svd.js";
import { lowRankSvd } from "./low-rank-svd.js";
import { randomizedSvd } from "./randomized-svd.js";

function naiveMatmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      c[i * n + j] = s;
    }
  return c;
}

function rand(seed: number, m: number, n: number): Float64Array {
  return Float64Array.from(randomUniform(createRng(seed), m * n));
}

/** ‖XᵀX − I‖_max for X [m, p]. */
function orthonormalityError(x: Float64Array, m: number, p: number): number {
  const g = matmulTransA(x, x, m, p, p);
  let e = 0;
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) e = Math.max(e, Math.abs(g[i * p + j] - (i === j ? 1 : 0)));
  return e;
}

/** U·diag(s)·Vᵀ → [m, n]. */
function reconstruct(u: Float64Array, s: Float64Array, v: Float64Array, m: number, n: number, p: number): Float64Array {
  const us = new Float64Array(m * p);
  for (let i = 0; i < m; i++) for (let k = 0; k < p; k++) us[i * p + k] = u[i * p + k] * s[k];
  return matmulTransB(us, v, m, p, n);
}

/** A random m×n matrix of exact rank r with singular values spread over [1, 100]. */
function lowRankMatrix(seed: number, m: number, n: number, r: number): { mat: Float64Array; left: Float64Array; right: Float64Array } {
  const left = rand(seed, m, r);
  const right = rand(seed + 1, n, r);
  for (let k = 0; k < r; k++) for (let i = 0; i < m; i++) left[i * r + k] *= 100 ** (-k / Math.max(1, r - 1));
  return { mat: matmulTransB(left, right, m, r, n), left, right };
}

describe("matmul kernels", () => {
  it.each([[1, 1, 1], [3, 5, 2], [17, 8, 31]])("matmul / transA / transB equal the naive product (%i×%i·%i×…)", (m, k, n) => {
    const a = rand(m, m, k);
    const b = rand(n + 100, k, n);
    const ref = naiveMatmul(a, b, m, k, n);
    expect(relativeError(matmul(a, b, m, k, n), ref)).toBeLessThan(1e-14);
    expect(relativeError(matmulTransA(transpose(a, m, k), b, k, m, n), ref)).toBeLessThan(1e-14);
    expect(relativeError(matmulTransB(a, transpose(b, k, n), m, k, n), ref)).toBeLessThan(1e-14);
    expect(frobeniusSquared([3, 4])).toBe(25);
  });
  it("checks lengths", () => {
    expect(() => matmul(new Float64Array(5), new Float64Array(6), 2, 3, 2)).toThrow(/matmul A: expected 2×3 = 6 elements, got 5/);
  });
});

describe("qrThin", () => {
  it.each([[1, 1], [5, 3], [40, 40], [300, 12]])("A = QR, QᵀQ = I, R upper triangular for %i×%i", (m, n) => {
    const a = rand(m * 7 + n, m, n);
    const { q, r } = qrThin(a, m, n);
    expect(relativeError(matmul(q, r, m, n, n), a)).toBeLessThan(1e-13);
    expect(orthonormalityError(q, m, n)).toBeLessThan(1e-13);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) expect(r[i * n + j]).toBe(0);
  });
  it("handles rank-deficient and zero matrices (Q stays orthonormal)", () => {
    const m = 20;
    const base = rand(1, m, 3);
    const dup = new Float64Array(m * 6); // columns [c0 c1 c2 c0 0 2·c1]
    for (let i = 0; i < m; i++) {
      dup.set([base[i * 3], base[i * 3 + 1], base[i * 3 + 2], base[i * 3], 0, 2 * base[i * 3 + 1]], i * 6);
    }
    const { q, r } = qrThin(dup, m, 6);
    expect(relativeError(matmul(q, r, m, 6, 6), dup)).toBeLessThan(1e-13);
    expect(orthonormalityError(q, m, 6)).toBeLessThan(1e-13);
    const z = qrThin(new Float64Array(m * 4), m, 4);
    expect(orthonormalityError(z.q, m, 4)).toBe(0);
    expect(z.r.every((x) => x === 0)).toBe(true);
  });
  it("rejects wide input", () => {
    expect(() => qrThin(new Float64Array(6), 2, 3)).toThrow(/rows ≥ columns/);
  });
});

describe("svdThin (ml-matrix)", () => {
  it.each([[6, 4], [4, 6], [1, 5], [30, 30]])("A = U·diag(σ)·Vᵀ with orthonormal U, V and sorted σ for %i×%i", (m, n) => {
    const a = rand(m * 3 + n, m, n);
    const { u, s, v, rank } = svdThin(a, m, n);
    const p = Math.min(m, n);
    expect(rank).toBe(p);
    expect(u.length).toBe(m * p);
    expect(v.length).toBe(n * p);
    expect(relativeError(reconstruct(u, s, v, m, n, p), a)).toBeLessThan(1e-12);
    expect(orthonormalityError(u, m, p)).toBeLessThan(1e-12);
    expect(orthonormalityError(v, n, p)).toBeLessThan(1e-12);
    for (let k = 1; k < p; k++) expect(s[k]).toBeLessThanOrEqual(s[k - 1]);
    // Σσ² = ‖A‖_F²
    expect(frobeniusSquared(s)).toBeCloseTo(frobeniusSquared(a), 10);
  });
});

describe("lowRankSvd", () => {
  it.each([[50, 40, 6], [200, 120, 16], [33, 33, 33]])("matches the dense SVD of L·Rᵀ (%i×%i, R = %i)", (m, n, R) => {
    const { mat, left, right } = lowRankMatrix(m + n + R, m, n, R);
    const dense = svdThin(mat, m, n);
    const full = lowRankSvd(left, right, m, n, R, R);
    for (let k = 0; k < R; k++) expect(full.s[k]).toBeCloseTo(dense.s[k], 9);
    expect(relativeError(reconstruct(full.u, full.s, full.v, m, n, R), mat)).toBeLessThan(1e-12);
    expect(orthonormalityError(full.u, m, R)).toBeLessThan(1e-12);
    expect(orthonormalityError(full.v, n, R)).toBeLessThan(1e-12);
    // truncation: the best rank-k approximation (Eckart–Young): error² = Σ dropped σ²
    const k = Math.max(1, R >> 1);
    const t = lowRankSvd(left, right, m, n, R, k);
    expect(t.allSingularValues.length).toBe(R);
    const approx = reconstruct(t.u, t.s, t.v, m, n, k);
    let err2 = 0;
    for (let j = 0; j < mat.length; j++) err2 += (mat[j] - approx[j]) ** 2;
    let dropped = 0;
    for (let j = k; j < R; j++) dropped += dense.s[j] ** 2;
    expect(err2).toBeCloseTo(dropped, 6);
  });
  it("refuses R larger than a side", () => {
    expect(() => lowRankSvd(new Float64Array(6), new Float64Array(9), 2, 3, 3, 1)).toThrow(/exceeds a side/);
  });
});

describe("randomizedSvd", () => {
  it("recovers an exactly low-rank matrix to machine precision", () => {
    const m = 150, n = 120, r = 8;
    const { mat } = lowRankMatrix(5, m, n, r);
    const t = randomizedSvd(mat, m, n, r, { seed: 3 });
    expect(t.exact).toBe(false);
    expect(relativeError(reconstruct(t.u, t.s, t.v, m, n, r), mat)).toBeLessThan(1e-12);
    // float32 input: exact up to the float32 rounding of the input itself
    const f = Float32Array.from(mat);
    const tf = randomizedSvd(f, m, n, r, { seed: 3 });
    expect(relativeError(reconstruct(tf.u, tf.s, tf.v, m, n, r), f)).toBeLessThan(1e-6);
  });
  it("is close to the best rank-k approximation for a full-rank matrix with a decaying spectrum", () => {
    const m = 120, n = 100, k = 10;
    const { mat } = lowRankMatrix(9, m, n, 40); // rank 40, σ over two decades
    const noise = rand(99, m, n);
    for (let j = 0; j < mat.length; j++) mat[j] += 1e-3 * noise[j];
    const dense = svdThin(mat, m, n);
    const t = randomizedSvd(mat, m, n, k, { seed: 1 });
    for (let j = 0; j < k; j++) expect(Math.abs(t.s[j] - dense.s[j]) / dense.s[j]).toBeLessThan(1e-3);
    expect(orthonormalityError(t.u, m, k)).toBeLessThan(1e-12);
    // same seed ⇒ bit-identical
    expect(randomizedSvd(mat, m, n, k, { seed: 1 }).u).toEqual(t.u);
  });
  it("falls back to the exact SVD when rank + oversample ≥ min(m, n)", () => {
    const a = rand(4, 30, 20);
    const t = randomizedSvd(a, 30, 20, 15);
    expect(t.exact).toBe(true);
    const d = svdThin(a, 30, 20);
    expect(Array.from(t.s)).toEqual(Array.from(d.s.slice(0, 15)));
  });
});
