import { describe, expect, it } from "vitest";
import { f16ToF32Reference } from "../dtype/f16.js";
import { createRng } from "../random/xoshiro128.js";
import { randomLoraAdapter } from "../random/random-adapter.js";
import { expectFormatError } from "../testing/expect-format-error.js";
import { bitsOf, expectSameBits, isNonFiniteHalf } from "../testing/same-bits.js";
import { loadPeftAdapter } from "./load-peft-adapter.js";
import { writePeftAdapter } from "./write-peft-adapter.js";

/** A NaN bit pattern no conversion produces from these files: any element left unwritten shows. */
const POISON = 0x7fc0dead;

/** An allocator handing out poisoned arrays, remembering them (as the runner's uninitialized memory would hold anything). */
function poisonedAlloc() {
  const handed: Float32Array[] = [];
  const alloc = (length: number) => {
    const array = new Float32Array(length);
    bitsOf(array).fill(POISON);
    handed.push(array);
    return array;
  };
  return { alloc, handed };
}

/**
 * Modules whose A tensors hold, between them, every finite f16 bit pattern (±0, subnormals, normals):
 * lengths chosen so tensors end inside a 16-half vector, one crosses the 32 768-half chunk edge of
 * the streamed kernel with a tail, and small ones are all tail.
 */
function everyFiniteHalfAdapter() {
  const adapter = randomLoraAdapter(createRng(11), [
    { module: "model.layers.0.self_attn.q_proj", rank: 1, inFeatures: 32781, outFeatures: 7 }, // A: 32 768 + 13
    { module: "model.layers.0.self_attn.v_proj", rank: 3, inFeatures: 17, outFeatures: 13 }, // A: 51, B: 39
    { module: "model.layers.1.self_attn.q_proj", rank: 2, inFeatures: 15363, outFeatures: 9 }, // A: 30 726
  ]);
  const finite = f16ToF32Reference(new Uint16Array(65536).map((_, h) => h).filter((h) => !isNonFiniteHalf(h)));
  let at = 0;
  for (const m of adapter.modules.values()) for (let i = 0; i < m.a.length; i++) m.a[i] = finite[at++ % finite.length];
  expect(at).toBeGreaterThanOrEqual(finite.length); // every finite pattern is in the file
  return adapter;
}

describe("loadPeftAdapter into a caller's allocator (the runner's uninitialized memory)", () => {
  it("F16 and BF16 through a poisoned allocator: every element overwritten, bit for bit the plain load (every finite half, tails, chunk edges)", () => {
    const adapter = everyFiniteHalfAdapter();
    for (const dtype of ["F16", "BF16"] as const) {
      const file = writePeftAdapter(adapter, { dtype });
      const plain = loadPeftAdapter(file.config, file.safetensors);
      const { alloc, handed } = poisonedAlloc();
      const loaded = loadPeftAdapter(file.config, file.safetensors, { alloc });
      expect(handed.length, dtype).toBe(2 * adapter.modules.size); // every converted tensor came from the allocator
      for (const [k, m] of plain.modules) {
        const got = loaded.modules.get(k)!;
        expect(handed).toContain(got.a);
        expect(handed).toContain(got.b);
        expectSameBits(got.a, m.a, `${dtype} ${k} A`);
        expectSameBits(got.b, m.b, `${dtype} ${k} B`);
      }
    }
    // The F16 values are the halves' exact values (the plain load is not the only witness).
    const f16 = writePeftAdapter(adapter, { dtype: "F16" });
    const loaded = loadPeftAdapter(f16.config, f16.safetensors, { alloc: poisonedAlloc().alloc });
    for (const [k, m] of adapter.modules) expectSameBits(loaded.modules.get(k)!.a, m.a, `F16 ${k} A`);
  });

  it("F32 tensors stay zero-copy views (nothing allocated); a NaN/Inf half is refused as on the plain path; a wrong-length allocator throws", () => {
    const adapter = randomLoraAdapter(createRng(12), [{ module: "model.layers.0.self_attn.q_proj", rank: 4, inFeatures: 40, outFeatures: 24 }]);
    const f32 = writePeftAdapter(adapter, { dtype: "F32" });
    const { alloc, handed } = poisonedAlloc();
    expect(loadPeftAdapter(f32.config, f32.safetensors, { alloc }).modules.values().next().value!.a.buffer).toBe(f32.safetensors.buffer);
    expect(handed).toHaveLength(0);
    const m = adapter.modules.get("model.layers.0.self_attn.q_proj")!;
    for (const [value, index] of [[Infinity, 17], [NaN, 95]] as const) {
      m.b[index] = value;
      const f16 = writePeftAdapter(adapter, { dtype: "F16" });
      const message = new RegExp(`lora_B.weight" has a non-finite value \\(${value}\\) at flat index ${index}`);
      expectFormatError(() => loadPeftAdapter(f16.config, f16.safetensors), "non_finite_weight", message);
      expectFormatError(() => loadPeftAdapter(f16.config, f16.safetensors, { alloc: poisonedAlloc().alloc }), "non_finite_weight", message);
      m.b[index] = 0.25;
    }
    expect(() => loadPeftAdapter(f32.config, writePeftAdapter(adapter, { dtype: "F16" }).safetensors, { alloc: (n) => new Float32Array(n - 1) })).toThrow(/tensor alloc\(\d+\) returned \d+ floats/);
  });
});
