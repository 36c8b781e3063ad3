import type { KvCache } from "./types.js";

/**
 * One row's key/value cache: per layer, keys and values [heads, length, headDim], immutable
 * (each step returns a new cache, so a cache can be stepped twice, e.g. to fork a prefix).
 */
export class RowKvCache implements KvCache {
  constructor(
    /** The model instance that produced it: caches never cross models. */
    readonly owner: object,
    readonly length: number,
    readonly heads: number,
    readonly headDim: number,
    /** [layer] → [heads, length, headDim] */
    readonly keys: readonly Float32Array[],
    /** [layer] → [heads, length, headDim] */
    readonly values: readonly Float32Array[],
  ) {}

  get bytes(): number {
    let n = 0;
    for (const k of this.keys) n += k.byteLength;
    for (const v of this.values) n += v.byteLength;
    return n;
  }
}

/**
 * Writes a row's cache into a batched past tensor at batch index `row`, left-aligned.
 * Semantics: past[row, h, t, :] = cache[h, t, :] for t < length; the rest stays zero.
 * `past` is [batch, heads, P, headDim] (or the key/value half of [2, batch, heads, P, headDim]).
 */
export function gatherRow(past: Float32Array, pastOffset: number, row: number, P: number, source: Float32Array, length: number, heads: number, headDim: number): void {
  for (let h = 0; h < heads; h++) {
    const dst = pastOffset + ((row * heads + h) * P) * headDim;
    past.set(source.subarray(h * length * headDim, (h + 1) * length * headDim), dst);
  }
}

/**
 * Reads a row's new cache out of a batched present tensor [batch, heads, P+S, headDim]:
 * its old entries sit at [0, oldLength), its n new ones at [P, P+n).
 * Semantics: out[h, t] = present[row, h, t] for t < oldLength; out[h, oldLength+j] = present[row, h, P+j].
 */
export function scatterRow(present: Float32Array, presentOffset: number, row: number, T: number, P: number, oldLength: number, n: number, heads: number, headDim: number): Float32Array {
  const length = oldLength + n;
  const out = new Float32Array(heads * length * headDim);
  for (let h = 0; h < heads; h++) {
    const src = presentOffset + ((row * heads + h) * T) * headDim;
    const dst = h * length * headDim;
    out.set(present.subarray(src, src + oldLength * headDim), dst);
    out.set(present.subarray(src + P * headDim, src + (P + n) * headDim), dst + oldLength * headDim);
  }
  return out;
}
