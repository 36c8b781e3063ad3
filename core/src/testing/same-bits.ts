import { expect } from "vitest";

/** The f32 bit patterns of `x` (NaN payloads and −0 visible). */
export const bitsOf = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

/** Throws at the first differing f32 bit pattern (a loop: fast on 65 k values, unlike toEqual). */
export function expectSameBits(got: Float32Array, want: Float32Array, what: string): void {
  const g = bitsOf(got);
  const w = bitsOf(want);
  expect(g.length, what).toBe(w.length);
  for (let i = 0; i < g.length; i++) if (g[i] !== w[i]) throw new Error(`${what} i=${i}: ${g[i].toString(16)} vs ${w[i].toString(16)}`);
}

/** f16 bit patterns that hit every branch of a conversion: ±0, subnormals, normals, ±Inf, NaN payloads. */
export const SPECIAL_HALVES = [0x0000, 0x8000, 0x0001, 0x03ff, 0x8001, 0x0400, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7c01, 0x7e00, 0xffff, 0x7fff];

/** Whether an f16 bit pattern is ±Inf or NaN (exponent bits all ones). */
export const isNonFiniteHalf = (h: number) => (h & 0x7c00) === 0x7c00;
