/**
 * Seeded pseudo-random numbers that are bit-identical on every platform: xoshiro128**
 * (Blackman & Vigna) seeded through SplitMix32. Only 32-bit integer operations
 * (Math.imul, shifts, xor) are used, so Node, workerd and browsers produce the same stream
 * for the same seed. Not for cryptography.
 */

/** A stream of pseudo-random numbers. */
export interface Rng {
  /** Next unsigned 32-bit integer, uniform on [0, 2³²). */
  nextUint32(): number;
  /**
   * Next float, uniform on [0, 1).
   * Semantics: nextUint32() / 2³² (exact in float64: no rounding, no Math.* calls).
   */
  nextFloat(): number;
}

const TWO_POW_32 = 4294967296;

/** SplitMix32 step (used only to expand a seed into the xoshiro state). */
function splitMix32(state: { x: number }): number {
  state.x = (state.x + 0x9e3779b9) | 0;
  let z = state.x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
  }
}

/**
 * Creates a xoshiro128** generator from its raw 128-bit state (four uint32 words, not all 0).
 * Exposed so the generator can be checked against the reference C implementation.
 */
export function createRngFromState(s0: number, s1: number, s2: number, s3: number): Rng {
  let a = s0 | 0;
  let b = s1 | 0;
  let c = s2 | 0;
  let d = s3 | 0;
  if ((a | b | c | d) === 0) throw new RangeError("xoshiro128** state must not be all zero");
  const nextUint32 = function nextUint32(): number {
    // result = rotl(s1 * 5, 7) * 9
    const t5 = Math.imul(b, 5);
    const result = Math.imul((t5 << 7) | (t5 >>> 25), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = (d << 11) | (d >>> 21);
    return result;
  };
  return {
    nextUint32,
    nextFloat: function nextFloat(): number {
      return nextUint32() / TWO_POW_32;
    },
  };
}

/**
 * Creates a generator from a seed (a non-negative safe integer). The 53-bit seed is split
 * into its low and high 32-bit halves and expanded with SplitMix32 into the 128-bit state.
 */
export function createRng(seed: number): Rng {
  checkSeed(seed);
  const lo = seed % TWO_POW_32;
  const hi = Math.floor(seed / TWO_POW_32);
  const st = { x: (lo ^ Math.imul(hi, 0x27d4eb2d)) | 0 };
  // Mix the high half in a second time so seeds differing only in the high bits diverge.
  st.x = (st.x + splitMix32({ x: hi | 0 })) | 0;
  let s0 = splitMix32(st);
  const s1 = splitMix32(st);
  const s2 = splitMix32(st);
  const s3 = splitMix32(st);
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
  return createRngFromState(s0, s1, s2, s3);
}

/**
 * Derives an independent seed from a base seed and labels (e.g. module name, term index),
 * so a stream does not depend on the order in which other streams are consumed.
 * Semantics: FNV-1a (32-bit) over the UTF-16 code units of the labels, mixed with the seed;
 * returns a non-negative safe integer.
 */
export function deriveSeed(seed: number, ...labels: ReadonlyArray<string | number>): number {
  checkSeed(seed);
  let h = 0x811c9dc5;
  const feed = (code: number): void => {
    h = Math.imul(h ^ (code & 0xffff), 0x01000193);
  };
  for (const label of labels) {
    const text = typeof label === "number" ? `#${label}` : label;
    for (let i = 0; i < text.length; i++) feed(text.charCodeAt(i));
    feed(0x1f); // separator: ("ab","c") ≠ ("a","bc")
  }
  const lo = seed % TWO_POW_32;
  const hi = Math.floor(seed / TWO_POW_32);
  const mixedLo = splitMix32({ x: (lo ^ h) | 0 });
  const mixedHi = splitMix32({ x: (hi ^ Math.imul(h, 0x9e3779b1)) | 0 }) & 0x1fffff; // 21 bits
  return mixedHi * TWO_POW_32 + mixedLo;
}
