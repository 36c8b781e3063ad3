import { describe, expect, it } from "vitest";
import { f16ToF32Reference } from "../dtype/f16.js";
import { halvesAllFiniteStreamed, simdKernelsAvailable } from "../simd/kernels.js";
import { bitsOf, expectSameBits, SPECIAL_HALVES } from "../testing/same-bits.js";
import { adapterAsFloat32, factorValues, firstNonFiniteHalf, HalfFactor, widenFactorInto } from "./factor.js";

const ALL_HALVES = Uint16Array.from({ length: 65536 }, (_, h) => h);
/** The plain definition: the first index whose exponent field is all ones. */
const firstNonFiniteReference = (bits: Uint16Array, mask: number) => bits.findIndex((h) => (h & mask) === mask);

describe("HalfFactor", () => {
  it("widens every F16 value exactly (SIMD and JS table) and every BF16 value as bits << 16", () => {
    const want = f16ToF32Reference(ALL_HALVES);
    expectSameBits(factorValues(new HalfFactor("F16", ALL_HALVES)), want, "F16 simd");
    expectSameBits(factorValues(new HalfFactor("F16", ALL_HALVES), { simd: false }), want, "F16 js");
    const bf16 = bitsOf(factorValues(new HalfFactor("BF16", ALL_HALVES)));
    for (let h = 0; h < 65536; h++) if (bf16[h] !== (h << 16) >>> 0) throw new Error(`BF16 ${h}: ${bf16[h]!.toString(16)}`);
  });

  it("an F32 factor is its own values (no copy); widenFactorInto copies it and refuses a wrong-sized output", () => {
    const x = Float32Array.from([1, -2, 3.5]);
    expect(factorValues(x)).toBe(x);
    const out = new Float32Array(3);
    expect(widenFactorInto(x, out)).toBe(out);
    expect([...out]).toEqual([1, -2, 3.5]);
    expect(() => widenFactorInto(new HalfFactor("F16", new Uint16Array(4)), out)).toThrow(RangeError);
    expect(new HalfFactor("BF16", new Uint16Array(5))).toMatchObject({ length: 5, byteLength: 10 });
  });

  it.each([
    ["F16", 0x7c00, [0x7bff, 0xfbff, 0x0001, 0x8000]],
    ["BF16", 0x7f80, [0x7f7f, 0xff7f, 0x0001, 0x8000]],
  ] as const)("firstNonFiniteHalf (%s): the first ±Inf/NaN at every position of vector body, tail and chunk edge; finite extremes pass", (dtype, mask, finite) => {
    const nonFinite = ALL_HALVES.filter((h) => (h & mask) === mask);
    for (const n of [0, 1, 31, 32, 33, 95, 4099, 32768 + 40, 70_001]) {
      const bits = Uint16Array.from({ length: n }, (_, i) => finite[i % finite.length]!);
      expect(firstNonFiniteHalf(new HalfFactor(dtype, bits))).toBe(-1);
      const positions = n > 200 ? [0, 31, 32, n - 33, n - 32, n - 1, Math.min(n - 1, 32767), Math.min(n - 1, 32768)] : Array.from({ length: n }, (_, i) => i);
      for (const [j, at] of positions.entries()) {
        const bad = bits.slice();
        bad[at] = nonFinite[(j * 131) % nonFinite.length]!;
        if (at + 5 < n) bad[at + 5] = nonFinite[0]!; // a later one does not move the answer
        expect(firstNonFiniteHalf(new HalfFactor(dtype, bad)), `n ${n} at ${at}`).toBe(firstNonFiniteReference(bad, mask));
        expect(firstNonFiniteReference(bad, mask)).toBe(at);
      }
    }
  });

  it("the SIMD halves scan equals the JS definition for every 16-bit value (alone among finite ones) and for special values at offsets of a view", () => {
    if (!simdKernelsAvailable()) return; // the JS path is the definition itself
    for (const mask of [0x7c00, 0x7f80]) {
      const block = new Uint16Array(64); // zeros: finite in both formats
      for (let h = 0; h < 65536; h++) {
        const at = h % 64;
        block[at] = h;
        if (halvesAllFiniteStreamed(block, mask) !== ((h & mask) !== mask)) throw new Error(`mask ${mask.toString(16)}: h ${h.toString(16)} at ${at}`);
        block[at] = 0;
      }
      for (const h of SPECIAL_HALVES.concat([0x7f80, 0xff80, 0x7fc0, 0x7f7f])) {
        for (const offset of [0, 1, 7]) {
          const buffer = new Uint16Array(offset + 64).fill(0x3c00);
          buffer[offset + (h % 64)] = h;
          const view = buffer.subarray(offset);
          expect(halvesAllFiniteStreamed(view, mask), `mask ${mask.toString(16)} h ${h.toString(16)} offset ${offset}`).toBe(firstNonFiniteReference(view, mask) === -1);
        }
      }
    }
  });

  it("adapterAsFloat32 widens 16-bit factors into new arrays and shares F32 ones", () => {
    const f32 = Float32Array.from([0.5, 2]);
    const half = new HalfFactor("F16", Uint16Array.from([0x3c00, 0xc000])); // 1, −2
    const adapter = { baseModel: "m", fanInFanOut: true, modules: new Map([["x", { module: "x", rank: 1, inFeatures: 2, outFeatures: 2, scale: 3, a: f32, b: half }]]) };
    const wide = adapterAsFloat32(adapter);
    const m = wide.modules.get("x")!;
    expect(m.a).toBe(f32);
    expect([...m.b]).toEqual([1, -2]);
    expect(wide).toMatchObject({ baseModel: "m", fanInFanOut: true });
    expect(m).toMatchObject({ rank: 1, scale: 3 });
  });
});
