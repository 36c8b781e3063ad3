/**
 * IEEE 754 binary16 (F16) ↔ binary32 (F32).
 *
 * Semantics:
 *   f16 bits s|eeeee|mmmmmmmmmm:
 *     e = 0        → (−1)^s · m · 2^−24            (zero and subnormals)
 *     e = 31       → ±Inf (m = 0) or NaN (m ≠ 0, payload kept in the top mantissa bits)
 *     otherwise    → (−1)^s · (1 + m/1024) · 2^(e−15)
 *   f32 → f16 rounds to nearest, ties to even; too large → ±Inf; too small → ±0;
 *   NaN stays NaN (quiet bit set), −0 stays −0.
 */

import { f16ToF32Simd } from "../simd/kernels.js";

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Bits of one f16 → the f32 bit pattern (exact: every f16 is an f32). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0) {
    if (mant === 0) return sign >>> 0;
    // subnormal: normalise
    let e = 1;
    while ((mant & 0x400) === 0) {
      mant <<= 1;
      e--;
    }
    mant &= 0x3ff;
    return (sign | ((e + 112) << 23) | (mant << 13)) >>> 0;
  }
  if (exp === 31) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
}

/** f32 bit pattern → f16 bits, round to nearest even. */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00;
    return sign | 0x7c00 | 0x200 | (mant >>> 13); // NaN: keep payload, force quiet
  }
  const e = exp - 112; // rebiased f16 exponent
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    // result is subnormal (or zero): value = m · 2^(exp−150), f16 ulp = 2^−24
    if (e < -10) return sign; // < 2^−25 → rounds to ±0
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1) === 1)) r++;
    return sign | r; // r = 0x400 carries into the smallest normal: correct
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r++; // carry may reach Inf: correct
  return sign | r;
}

let lut: Int32Array | null = null;
/** 65 536-entry table f16 bits → f32 bits (256 KiB, built once from `f16BitsToF32Bits`). */
function f16Table(): Int32Array {
  if (lut) return lut;
  const bits = new Int32Array(65536);
  for (let h = 0; h < 65536; h++) bits[h] = f16BitsToF32Bits(h);
  lut = bits;
  return lut;
}

/** One f16 (bits) → number. */
export function f16ToNumber(h: number): number {
  u32Scratch[0] = f16BitsToF32Bits(h & 0xffff);
  return f32Scratch[0];
}

/** One number → f16 bits (via f32 rounding first, as the array version does). */
export function numberToF16(x: number): number {
  f32Scratch[0] = x;
  return f32BitsToF16Bits(u32Scratch[0]);
}

/**
 * F16 array (bits) → F32 (exact).
 * Semantics: out[i] = the f32 whose bits are f16BitsToF32Bits(src[i]) (NaN payloads kept).
 * Fast path: the WebAssembly SIMD kernel (`simd/kernels.ts`, 16 values per step: integer ops and one
 * exact f32 multiply by 2^112) where it can run, else `f16ToF32Table`. Reference: `f16ToF32Reference`.
 */
export function f16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  f16ToF32AllFinite(src, out);
  return out;
}

/**
 * `f16ToF32(src, out)` and, from the same pass, whether every value is finite
 * (true ⇔ no src[i] has exponent bits 11111, i.e. no ±Inf / NaN).
 */
export function f16ToF32AllFinite(src: Uint16Array, out: Float32Array): boolean {
  if (out.length !== src.length) throw new RangeError(`f16ToF32: out has ${out.length} elements, src ${src.length}`);
  const t = f16Table();
  const simd = f16ToF32Simd(src, out, (h) => t[h]);
  if (simd !== null) return simd;
  f16ToF32Table(src, out);
  return f16AllFinite(src);
}

/** Whether no f16 in `src` is ±Inf or NaN (exponent bits 11111), in JS: the fallback's check. */
export function f16AllFinite(src: Uint16Array): boolean {
  let overflow = 0;
  for (let i = 0; i < src.length; i++) overflow |= (src[i] & 0x7c00) + 0x0400; // reaches 0x8000 ⇔ exponent 31
  return (overflow & 0x8000) === 0;
}

/**
 * F16 → F32 in JS: a 65 536-entry table of f32 *bit patterns* written through an Int32Array view
 * of `out`, so values never pass through a double (no NaN canonicalisation, integer moves only).
 * Cost: one table load + one store per element (≈1 G elements/s in V8 here).
 */
export function f16ToF32Table(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  if (out.length !== src.length) throw new RangeError(`f16ToF32: out has ${out.length} elements, src ${src.length}`);
  const t = f16Table();
  const o = new Int32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) o[i] = t[src[i]];
  return out;
}

/** Plain reference for `f16ToF32`: element by element through `f16BitsToF32Bits`. */
export function f16ToF32Reference(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const o = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) o[i] = f16BitsToF32Bits(src[i]);
  return out;
}

/** F32 array → F16 bits (round to nearest even). */
export function f32ToF16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (out.length !== src.length) throw new RangeError(`f32ToF16: out has ${out.length} elements, src ${src.length}`);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  return out;
}
