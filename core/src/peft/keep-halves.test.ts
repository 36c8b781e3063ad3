import { describe, expect, it } from "vitest";
import { composeMix } from "../compose/compose-mix.js";
import { f16ToF32Reference } from "../dtype/f16.js";
import { HalfFactor, factorValues, type LoraFactor } from "../lora/factor.js";
import { deltaWeight } from "../lora/delta.js";
import type { LoraAdapter } from "../lora/types.js";
import { createRng } from "../random/xoshiro128.js";
import { randomLoraAdapter } from "../random/random-adapter.js";
import { allocateSafetensorsBytes } from "../safetensors/widen-in-place.js";
import { expectFormatError } from "../testing/expect-format-error.js";
import { expectSameBits, isNonFiniteHalf } from "../testing/same-bits.js";
import { loadPeftAdapter, readPeftAdapter } from "./load-peft-adapter.js";
import { writePeftAdapter } from "./write-peft-adapter.js";

/** Shapes whose tensors end inside a 16-half vector, cross the streamed scan's 32 768-half chunk with a tail, and are all tail. */
const SHAPES = [
  { module: "model.layers.0.self_attn.q_proj", rank: 1, inFeatures: 32781, outFeatures: 7 }, // A: 32 768 + 13
  { module: "model.layers.0.self_attn.v_proj", rank: 3, inFeatures: 17, outFeatures: 13 }, // A: 51, B: 39
  { module: "model.layers.1.self_attn.q_proj", rank: 2, inFeatures: 15363, outFeatures: 9 }, // A: 30 726
];

/** An adapter whose A tensors hold, between them, every finite f16 bit pattern. */
function everyFiniteHalfAdapter(seed: number) {
  const adapter = randomLoraAdapter(createRng(seed), SHAPES);
  const finite = f16ToF32Reference(new Uint16Array(65536).map((_, h) => h).filter((h) => !isNonFiniteHalf(h)));
  let at = 0;
  for (const m of adapter.modules.values()) for (let i = 0; i < m.a.length; i++) m.a[i] = finite[at++ % finite.length]!;
  return adapter;
}

const halvesOf = (adapter: LoraAdapter<LoraFactor>) => [...adapter.modules.values()].flatMap((m) => [m.a, m.b]);

/** Every factor of `kept` widened equals the converting load's F32 bit for bit. */
function expectSameValues(kept: LoraAdapter<LoraFactor>, converted: LoraAdapter, what: string) {
  expect([...kept.modules.keys()]).toEqual([...converted.modules.keys()]);
  for (const [k, m] of converted.modules) {
    const got = kept.modules.get(k)!;
    expect({ ...got, a: 0, b: 0 }).toEqual({ ...m, a: 0, b: 0 });
    expectSameBits(factorValues(got.a), m.a, `${what} ${k} A`);
    expectSameBits(factorValues(got.b), m.b, `${what} ${k} B`);
  }
}

describe("loadPeftAdapter keepHalves", () => {
  it.each(["F16", "BF16"] as const)("%s tensors stay 16-bit views of the bytes, equal to the converting load once widened; the summary is the same", (dtype) => {
    const files = writePeftAdapter(everyFiniteHalfAdapter(31), { dtype });
    const kept = readPeftAdapter(files.config, files.safetensors, { keepHalves: true });
    const converted = readPeftAdapter(files.config, files.safetensors);
    expect(kept.summary).toEqual(converted.summary);
    expect(kept.summary.dtype).toBe(dtype);
    for (const x of halvesOf(kept.adapter)) {
      expect(x).toBeInstanceOf(HalfFactor);
      expect((x as HalfFactor).dtype).toBe(dtype);
      expect((x as HalfFactor).bits.buffer).toBe(files.safetensors.buffer); // no copy
    }
    expectSameValues(kept.adapter, converted.adapter, dtype);
    // Written back in their own dtype, the halves are the file they came from, byte for byte.
    expect(Buffer.from(writePeftAdapter(kept.adapter, { dtype }).safetensors).equals(Buffer.from(files.safetensors))).toBe(true);
  });

  it("copies when asked for or when the bytes are not 2-aligned; F32 stays a zero-copy view", () => {
    const adapter = randomLoraAdapter(createRng(32), SHAPES.slice(1));
    const files = writePeftAdapter(adapter, { dtype: "F16" });
    const copied = loadPeftAdapter(files.config, files.safetensors, { keepHalves: true, copy: true });
    for (const x of halvesOf(copied)) expect((x as HalfFactor).bits.buffer).not.toBe(files.safetensors.buffer);
    const odd = new Uint8Array(files.safetensors.length + 1);
    odd.set(files.safetensors, 1);
    const misaligned = loadPeftAdapter(files.config, odd.subarray(1), { keepHalves: true });
    for (const x of halvesOf(misaligned)) expect((x as HalfFactor).bits.byteOffset % 2).toBe(0);
    const converted = loadPeftAdapter(files.config, files.safetensors);
    expectSameValues(copied, converted, "copied");
    expectSameValues(misaligned, converted, "misaligned");
    const f32 = writePeftAdapter(adapter, { dtype: "F32" });
    for (const x of halvesOf(loadPeftAdapter(f32.config, f32.safetensors, { keepHalves: true }))) expect((x as Float32Array).buffer).toBe(f32.safetensors.buffer);
  });

  it("bytes received for widening in place are left as they are, and no later load widens them under the kept views", () => {
    const files = writePeftAdapter(randomLoraAdapter(createRng(33), SHAPES.slice(1)), { dtype: "F16" });
    const bytes = allocateSafetensorsBytes(files.safetensors.length, files.safetensors, { minBytes: 0 });
    bytes.set(files.safetensors);
    const kept = loadPeftAdapter(files.config, bytes, { keepHalves: true });
    expect(Buffer.from(bytes).equals(Buffer.from(files.safetensors))).toBe(true);
    const converted = loadPeftAdapter(files.config, files.safetensors);
    expectSameValues(kept, converted, "in a kernel Memory");
    expectSameValues(loadPeftAdapter(files.config, bytes, { keepHalves: true }), converted, "loaded again");
    expectSameValues(converted, loadPeftAdapter(files.config, bytes), "converted after"); // into new arrays, not in place
    expectSameValues(kept, converted, "the kept views after it");
  });

  it.each([
    ["F16", Infinity, 17],
    ["F16", NaN, 95],
    ["F16", -Infinity, 32768 + 5], // past the first streamed chunk
    ["BF16", NaN, 3],
    ["BF16", Infinity, 32781 - 1], // the last value: the tail
  ] as const)("a non-finite %s value (%s at %i) is refused as the converting load refuses it", (dtype, value, index) => {
    const adapter = randomLoraAdapter(createRng(34), SHAPES.slice(0, 1));
    adapter.modules.get(SHAPES[0]!.module)!.a[index] = value;
    const files = writePeftAdapter(adapter, { dtype });
    const message = new RegExp(`lora_A.weight" has a non-finite value \\(${value}\\) at flat index ${index}$`);
    expectFormatError(() => loadPeftAdapter(files.config, files.safetensors, { keepHalves: true }), "non_finite_weight", message);
    expectFormatError(() => loadPeftAdapter(files.config, files.safetensors), "non_finite_weight", message);
  });

  it("composes, bit for bit, as the converted adapter does (SIMD and JS paths, verified bound), and gives the same ΔW", () => {
    const shapes = [
      { module: "model.layers.0.self_attn.q_proj", rank: 6, inFeatures: 67, outFeatures: 45 },
      { module: "model.layers.0.mlp.down_proj", rank: 5, inFeatures: 130, outFeatures: 64 },
    ];
    const files = [writePeftAdapter(randomLoraAdapter(createRng(35), shapes), { dtype: "F16" }), writePeftAdapter(randomLoraAdapter(createRng(36), shapes.slice(1)), { dtype: "BF16" })];
    const kept = files.map((f) => loadPeftAdapter(f.config, f.safetensors, { keepHalves: true }));
    const converted = files.map((f) => loadPeftAdapter(f.config, f.safetensors));
    const f32 = writePeftAdapter(randomLoraAdapter(createRng(37), shapes), { dtype: "F32" });
    const third = loadPeftAdapter(f32.config, f32.safetensors);
    // Both orders: a 16-bit term after an F32 one stages its halves while the F32 term's blocks already sit in dst.
    for (const [simd, f32First] of [[true, false], [true, true], [false, false], [false, true]] as const) {
      const mix = (a: LoraAdapter<LoraFactor>, b: LoraAdapter<LoraFactor>) => {
        const halves = [
          { adapter: a, weight: 0.7 },
          { adapter: b, weight: -1.25 },
        ];
        const f32Term = { adapter: third, weight: 0.5 };
        return composeMix(f32First ? [f32Term, ...halves] : [...halves, f32Term], { simd, bound: 1e6 });
      };
      const got = mix(kept[0]!, kept[1]!);
      const want = mix(converted[0]!, converted[1]!);
      expect(got.verifiedBound).toBe(want.verifiedBound);
      expect(got.maxRank).toBe(want.maxRank);
      for (const [k, m] of want.modules) {
        expectSameBits(got.modules.get(k)!.at, m.at, `simd ${simd} F32 first ${f32First} ${k} at`);
        expectSameBits(got.modules.get(k)!.bt, m.bt, `simd ${simd} F32 first ${f32First} ${k} bt`);
      }
    }
    for (const [k, m] of converted[0]!.modules) expectSameBits(deltaWeight(kept[0]!.modules.get(k)!), deltaWeight(m), `ΔW ${k}`);
  });
});
