/**
 * Truncated SVD of a large dense matrix by randomized subspace iteration (Halko, Martinsson &
 * Tropp 2011, Alg. 4.4), with an exact fallback when the requested rank is (nearly) full.
 */
import { createRng } from "../random/index.js";
import { matmul, matmulTransB, transpose, type Dense } from "./matmul.js";
import { qrThin } from "./qr.js";
import { lowRankSvd, takeColumns } from "./low-rank-svd.js";
import { svdThin, type ThinSvd } from "./svd.js";

export interface RandomizedSvdOptions {
  /** Extra sketch columns beyond the rank (default 10). */
  oversample?: number;
  /** Subspace (power) iterations (default 2); each costs two passes over M. */
  powerIterations?: number;
  /** Seed of the sketch (default 0): same seed ⇒ same result, bit for bit. */
  seed?: number;
}

export interface TruncatedSvd extends ThinSvd {
  /** true when computed by the exact dense SVD (rank + oversample ≥ min(m, n)). */
  exact: boolean;
}

/**
 * Rank-k truncated SVD of a dense M [m,n].
 *
 * Semantics: returns U [m,k], σ [k], V [n,k] with M ≈ U·diag(σ)·Vᵀ, the best rank-k
 * approximation up to the sketch's accuracy; exactly it when M has rank ≤ k + oversample,
 * and exactly it (dense ml-matrix SVD) when k + oversample ≥ min(m, n).
 *   Ω [n,l] uniform on [−1,1) from the seed, l = k + oversample;
 *   Q = orth(M·Ω); q times: Q = orth(M·orth(Mᵀ·Q));  then M ≈ Q·(QᵀM) → lowRankSvd.
 * Cost ≈ (2q + 2)·m·n·l multiply-adds plus O((m + n)·l²); e.g. 4096×4096, k = 16, q = 2:
 * about 2.6·10⁹ multiply-adds, ≈ 8–15 s on the 2-core dev box (JS runs ~0.3 GFlop/s here).
 * The exact fallback costs O(m·n·min(m,n)): keep requested ranks well below min(m, n) for
 * large targets (callers should cap the rank, e.g. at the platform's maximum adapter rank).
 */
export function randomizedSvd(mat: Dense, m: number, n: number, k: number, opts: RandomizedSvdOptions = {}): TruncatedSvd {
  if (mat.length !== m * n) throw new RangeError(`randomizedSvd: expected ${m}×${n} = ${m * n} elements, got ${mat.length}`);
  const p = Math.min(m, n);
  if (!Number.isInteger(k) || k < 0 || k > p) throw new RangeError(`randomizedSvd: rank must be an integer in [0, ${p}], got ${k}`);
  const oversample = opts.oversample ?? 10;
  const q = opts.powerIterations ?? 2;
  const l = k + oversample;
  if (l >= p) {
    const full = svdThin(mat, m, n);
    return {
      rank: k,
      exact: true,
      u: takeColumns(full.u, m, p, k),
      s: full.s.slice(0, k),
      v: takeColumns(full.v, n, p, k),
    };
  }
  const rng = createRng(opts.seed ?? 0);
  const omegaT = new Float64Array(l * n); // Ωᵀ [l, n]
  for (let j = 0; j < omegaT.length; j++) omegaT[j] = 2 * rng.nextFloat() - 1;
  let basis = qrThin(matmulTransB(mat, omegaT, m, n, l), m, l).q; // Q = orth(M·Ω)  [m, l]
  for (let it = 0; it < q; it++) {
    const zT = matmul(transpose(basis, m, l), mat, l, m, n); // Qᵀ·M  [l, n]
    const qz = qrThin(transpose(zT, l, n), n, l).q; // orth(Mᵀ·Q)  [n, l]
    basis = qrThin(matmulTransB(mat, transpose(qz, n, l), m, n, l), m, l).q; // orth(M·Qz)  [m, l]
  }
  const projT = matmul(transpose(basis, m, l), mat, l, m, n); // Qᵀ·M  [l, n]
  // M ≈ Q·(QᵀM) = Q·(Mᵀ Q)ᵀ: factored form with left = Q [m,l], right = MᵀQ [n,l].
  const low = lowRankSvd(basis, transpose(projT, l, n), m, n, l, k);
  return { rank: k, exact: false, u: low.u, s: low.s, v: low.v };
}
