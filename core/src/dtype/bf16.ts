/**
 * bfloat16 (BF16) ↔ binary32 (F32).
 *
 * Semantics: BF16 is the top 16 bits of an F32 (1 sign, 8 exponent, 7 mantissa bits):
 *   bf16 → f32: bits << 16 (exact; subnormals, ±0, ±Inf, NaN all preserved).
 *   f32 → bf16: round to nearest, ties to even, on the dropped 16 bits:
 *     (x + 0x7fff + ((x >> 16) & 1)) >> 16; overflow rounds to ±Inf as IEEE requires;
 *     NaN stays NaN (quiet bit forced so a payload in the low bits cannot turn it into Inf).
 */

/** f32 bit pattern → bf16 bits, round to nearest even. */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * BF16 array (bits) → F32 (exact): a 16-bit shift per element, written through an Int32Array
 * view of `out` (integer moves only: the values never pass through a double).
 */
export function bf16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  if (out.length !== src.length) throw new RangeError(`bf16ToF32: out has ${out.length} elements, src ${src.length}`);
  const bits = new Int32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return out;
}

/** F32 array → BF16 bits (round to nearest even). */
export function f32ToBf16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (out.length !== src.length) throw new RangeError(`f32ToBf16: out has ${out.length} elements, src ${src.length}`);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16Bits(bits[i]);
  return out;
}
