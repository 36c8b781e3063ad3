/**
 * Dense row-major reference kernels. Plain loops, float64 accumulation: these are the
 * references the fast paths are held to, and the building blocks of the offline bake.
 */

/** Any row-major numeric buffer. */
export type Dense = Float32Array | Float64Array;

function checkLength(name: string, x: ArrayLike<number>, rows: number, cols: number): void {
  if (x.length !== rows * cols) {
    throw new RangeError(`${name}: expected ${rows}×${cols} = ${rows * cols} elements, got ${x.length}`);
  }
}

/**
 * Matrix product.
 * Semantics: C[i,j] = Σ_k A[i,k]·B[k,j]   A [m,k], B [k,n] → C [m,n] (float64).
 * Cost O(m·k·n); the i-k-j loop order streams rows of B and C.
 */
export function matmul(a: Dense, b: Dense, m: number, k: number, n: number): Float64Array {
  checkLength("matmul A", a, m, k);
  checkLength("matmul B", b, k, n);
  const c = new Float64Array(m * n); // [m, n]
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) c[ci + j] += aip * b[bp + j];
    }
  }
  return c;
}

/**
 * Product with the first factor transposed.
 * Semantics: C[i,j] = Σ_k A[k,i]·B[k,j]   A [k,m], B [k,n] → C = Aᵀ·B [m,n] (float64).
 */
export function matmulTransA(a: Dense, b: Dense, k: number, m: number, n: number): Float64Array {
  checkLength("matmulTransA A", a, k, m);
  checkLength("matmulTransA B", b, k, n);
  const c = new Float64Array(m * n); // [m, n]
  for (let p = 0; p < k; p++) {
    const ap = p * m;
    const bp = p * n;
    for (let i = 0; i < m; i++) {
      const api = a[ap + i];
      if (api === 0) continue;
      const ci = i * n;
      for (let j = 0; j < n; j++) c[ci + j] += api * b[bp + j];
    }
  }
  return c;
}

/**
 * Product with the second factor transposed (dot products of rows: long contiguous inner loops).
 * Semantics: C[i,j] = Σ_k A[i,k]·B[j,k]   A [m,k], B [n,k] → C = A·Bᵀ [m,n] (float64).
 */
export function matmulTransB(a: Dense, b: Dense, m: number, k: number, n: number): Float64Array {
  checkLength("matmulTransB A", a, m, k);
  checkLength("matmulTransB B", b, n, k);
  const c = new Float64Array(m * n); // [m, n]
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let s = 0;
      for (let p = 0; p < k; p++) s += a[ai + p] * b[bj + p];
      c[i * n + j] = s;
    }
  }
  return c;
}

/**
 * Transpose.
 * Semantics: T[j,i] = A[i,j]   A [rows, cols] → T [cols, rows], same element type.
 */
export function transpose<T extends Dense>(a: T, rows: number, cols: number): T {
  checkLength("transpose", a, rows, cols);
  const t = new (a.constructor as new (n: number) => T)(rows * cols); // [cols, rows]
  for (let i = 0; i < rows; i++) {
    const ai = i * cols;
    for (let j = 0; j < cols; j++) t[j * rows + i] = a[ai + j];
  }
  return t;
}

/** Frobenius norm squared. Semantics: ‖x‖_F² = Σ_j x[j]². */
export function frobeniusSquared(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/**
 * Relative error. Semantics: ‖x − y‖_F / max(‖y‖_F, tiny); 0 when x = y (e.g. both zero). Used by the tests and by
 * callers that compare a fast path with its reference.
 */
export function relativeError(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new RangeError(`relativeError: lengths differ (${x.length} vs ${y.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - y[i];
    num += d * d;
    den += y[i] * y[i];
  }
  if (num === 0) return 0;
  return Math.sqrt(num) / Math.max(Math.sqrt(den), Number.MIN_VALUE);
}
