import { describe, expect, it } from "vitest";
import { createRng } from "../random/xoshiro128.js";
import { bf16ToF32, f32ToBf16 } from "./bf16.js";
import { f16BitsToF32Bits, f16ToF32, f16ToF32Reference, f32ToF16, f16ToNumber, numberToF16 } from "./f16.js";

/** Naive F16 decoding straight from the IEEE formula. */
function naiveF16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

/** Bits of a float32 value. */
function f32Bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}
function bitsToF32(b: number): number {
  return new Float32Array(new Uint32Array([b]).buffer)[0];
}

/** Naive round-to-nearest-even f32 → f16 by searching the sorted list of all f16 magnitudes. */
const f16Magnitudes = Array.from({ length: 0x7c00 }, (_, h) => naiveF16(h)); // 0 … 65504, increasing
function naiveToF16(x: number): number {
  const sign = Object.is(x, -0) || x < 0 ? 0x8000 : 0;
  if (Number.isNaN(x)) return -1; // checked separately
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // ≥ max + half ulp (tie goes to even = Inf)
  let lo = 0;
  let hi = f16Magnitudes.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (f16Magnitudes[mid] <= a) lo = mid;
    else hi = mid;
  }
  if (a >= f16Magnitudes[hi]) return sign | hi;
  const dl = a - f16Magnitudes[lo];
  const dh = f16Magnitudes[hi] - a;
  if (dl < dh) return sign | lo;
  if (dh < dl) return sign | hi;
  return sign | (lo % 2 === 0 ? lo : hi);
}

/** Naive f32 → bf16: pick the nearer of the two neighbouring bf16 values, ties to even. */
function naiveToBf16(x: number): number {
  const b = f32Bits(x);
  const lo = b >>> 16;
  const hi = lo + 1;
  const value = (bits: number) => ((bits & 0x7fff) === 0x7f80 ? (bits & 0x8000 ? -1 : 1) * 2 ** 128 : bitsToF32(bits << 16));
  const vx = bitsToF32(b);
  const dl = Math.abs(vx - value(lo));
  const dh = Math.abs(value(hi) - vx);
  if (dl < dh) return lo;
  if (dh < dl) return hi & 0xffff;
  return (lo % 2 === 0 ? lo : hi) & 0xffff;
}

/**
 * Converts the f32 bit patterns with `convert` and checks every result against the naive
 * `reference`; a NaN input must give a 16-bit NaN pattern (`isNanBits`).
 */
function expectRoundsLikeReference(bits: Uint32Array, convert: (xs: Float32Array) => Uint16Array, reference: (x: number) => number, isNanBits: (h: number) => boolean): void {
  const xs = new Float32Array(bits.buffer);
  const out = convert(xs);
  for (let i = 0; i < xs.length; i++) {
    if (Number.isNaN(xs[i])) {
      expect(isNanBits(out[i]), `NaN bits ${bits[i].toString(16)} → ${out[i].toString(16)}`).toBe(true);
      continue;
    }
    const ref = reference(xs[i]);
    if (out[i] !== ref) throw new Error(`x=${xs[i]} (bits ${bits[i].toString(16)}): got ${out[i].toString(16)}, want ${ref.toString(16)}`);
  }
}

describe("f16", () => {
  it("decodes all 65 536 bit patterns like the IEEE formula", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const out = f16ToF32(all);
    for (let h = 0; h < 65536; h++) {
      const ref = naiveF16(h);
      const ok = Number.isNaN(ref) ? Number.isNaN(out[h]) : Object.is(out[h], ref);
      if (!ok) throw new Error(`h=${h.toString(16)}: got ${out[h]}, want ${ref}`);
    }
  });

  it("f16ToF32 (SIMD kernel, else the table) equals the plain reference bit for bit for all 65 536 patterns (NaN payloads, subnormals, ±0, ±Inf), into an offset view", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const ref = new Uint32Array(f16ToF32Reference(all).buffer);
    // `out` as a view at a 4-byte offset inside a larger buffer, with sentinels either side.
    const backing = new Float32Array(65536 + 2);
    const sentinel = new Uint32Array(backing.buffer);
    sentinel[0] = 0xdeadbeef;
    sentinel[65537] = 0xcafef00d;
    const out = f16ToF32(all, backing.subarray(1, 65537));
    const got = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let h = 0; h < 65536; h++) {
      if (got[h] !== ref[h] || ref[h] !== f16BitsToF32Bits(h)) throw new Error(`h=${h.toString(16)}: table ${got[h].toString(16)}, reference ${ref[h].toString(16)}`);
    }
    expect([sentinel[0], sentinel[65537]]).toEqual([0xdeadbeef, 0xcafef00d]);
    // NaN payloads survive (not canonicalised): 0x7c01 → 0x7f802000, 0xfe00 → 0xffc00000.
    expect(got[0x7c01]).toBe(0x7f802000);
    expect(got[0xfe00]).toBe(0xffc00000);
  });

  it("round-trips every non-NaN f16 exactly and keeps NaN NaN", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToF16(f16ToF32(all));
    for (let h = 0; h < 65536; h++) {
      const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      const ok = isNaN16 ? (back[h] & 0x7c00) === 0x7c00 && (back[h] & 0x3ff) !== 0 : back[h] === h;
      if (!ok) throw new Error(`h=${h.toString(16)} came back as ${back[h].toString(16)}`);
    }
  });

  it("rounds random f32 bit patterns to nearest even like an exhaustive search", () => {
    const rng = createRng(12345);
    const next = () => rng.nextUint32();
    const n = 200_000;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      // Bias exponents toward the f16 range so subnormals, normals and overflow all occur.
      const r = next();
      const exp = 95 + (r % 50); // 2^-32 … 2^17
      bits[i] = i % 4 === 0 ? next() : (r & 0x80000000) | (exp << 23) | (next() & 0x7fffff);
    }
    expectRoundsLikeReference(bits, f32ToF16, naiveToF16, (h) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0);
  });

  it("handles the edge cases: ±0, subnormal limits, ties, overflow, NaN", () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000],
      [-0, 0x8000],
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // exact tie between 0 and 2^-24 → even (0)
      [-(2 ** -25), 0x8000],
      [Math.fround(2 ** -25 * 1.0000001), 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 ulps → even (2)
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -14 - 2 ** -25, 0x0400], // tie between largest subnormal (odd) and smallest normal → even
      [1, 0x3c00],
      [1 + 2 ** -11, 0x3c00], // tie → even mantissa
      [1 + 3 * 2 ** -11, 0x3c02],
      [65504, 0x7bff],
      [65519, 0x7bff],
      [65520, 0x7c00], // tie at max + half ulp → Inf
      [1e9, 0x7c00],
      [-Infinity, 0xfc00],
    ];
    for (const [x, h] of cases) expect(numberToF16(x), `x=${x}`).toBe(h);
    expect(Number.isNaN(f16ToNumber(numberToF16(NaN)))).toBe(true);
    expect(Object.is(f16ToNumber(0x8000), -0)).toBe(true);
    expect(f16ToNumber(0x0001)).toBe(2 ** -24);
  });
});

describe("bf16", () => {
  it("widens exactly (bits << 16) including subnormals, ±0, Inf and NaN", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const out = new Uint32Array(bf16ToF32(all).buffer);
    for (let h = 0; h < 65536; h++) if (out[h] !== (h << 16) >>> 0) throw new Error(`h=${h.toString(16)}`);
  });

  it("rounds random f32 values to nearest even like a two-candidate search", () => {
    const rng = createRng(777);
    const next = () => rng.nextUint32();
    const n = 200_000;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = i % 8 === 0 ? (next() & 0xffff0000) | 0x8000 : next(); // many exact ties
    expectRoundsLikeReference(bits, f32ToBf16, naiveToBf16, (h) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0);
  });

  it("keeps NaN with a low-bits-only payload a NaN, and overflows to Inf", () => {
    const nanLow = new Float32Array(new Uint32Array([0x7f800001]).buffer);
    const b = f32ToBf16(nanLow)[0];
    expect((b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0).toBe(true);
    const max = new Float32Array(new Uint32Array([0x7f7fffff]).buffer);
    expect(f32ToBf16(max)[0]).toBe(0x7f80);
    expect(f32ToBf16(new Float32Array([-0]))[0]).toBe(0x8000);
  });
});
