// What a bake job sends to its thread: exactly-sized tensors, never a view's whole backing buffer.
import { describe, expect, it } from "vitest";
import { factorValues, HalfFactor } from "#core/lora/factor";
import { loadPeftAdapter, writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { jobForThread } from "./bake-thread.js";

describe("jobForThread", () => {
  it("a view into a larger buffer goes as an exactly-sized, transferred copy of its values; a tensor that is its whole buffer goes as is, never transferred", () => {
    const shapes = [
      { module: "model.layers.0.self_attn.q_proj", rank: 4, inFeatures: 32, outFeatures: 24 },
      { module: "model.layers.0.self_attn.v_proj", rank: 2, inFeatures: 32, outFeatures: 8 },
    ];
    const own = randomLoraAdapter(createRng(1), shapes); // each tensor its own buffer
    const f32 = writePeftAdapter(randomLoraAdapter(createRng(2), shapes), { dtype: "F32" });
    const views = loadPeftAdapter(f32.config, f32.safetensors); // zero-copy views of the whole blob
    const viewTensors = [...views.modules.values()].flatMap((m) => [m.a, m.b]);
    expect(viewTensors.every((x) => x.buffer === f32.safetensors.buffer)).toBe(true);
    const job = { terms: [{ adapter: own, weight: 0.5 }, { adapter: views, weight: -1 }], options: { strategy: "svd" as const }, baseModel: "m" };

    const { job: sent, transfer } = jobForThread(job);
    expect(sent.terms.map((t) => t.weight)).toEqual([0.5, -1]);
    expect([sent.options, sent.baseModel]).toEqual([job.options, job.baseModel]);
    for (const [k, m] of own.modules) {
      const s = sent.terms[0]!.adapter.modules.get(k)!;
      expect([s.a, s.b]).toEqual([m.a, m.b]);
      expect(s.a).toBe(m.a);
      expect(s.b).toBe(m.b);
    }
    for (const [k, m] of views.modules) {
      const s = sent.terms[1]!.adapter.modules.get(k)!;
      expect({ ...s, a: null, b: null }).toEqual({ ...m, a: null, b: null });
      for (const part of ["a", "b"] as const) {
        expect(s[part].buffer).not.toBe(f32.safetensors.buffer);
        expect([s[part].byteOffset, s[part].buffer.byteLength]).toEqual([0, m[part].byteLength]);
        expect(Buffer.from(s[part].buffer).equals(Buffer.from(m[part].buffer, m[part].byteOffset, m[part].byteLength))).toBe(true);
      }
    }
    expect(transfer).toHaveLength(viewTensors.length);
    expect(transfer.every((b) => b !== f32.safetensors.buffer && [...own.modules.values()].every((m) => b !== m.a.buffer && b !== m.b.buffer))).toBe(true);
    expect(views.modules.get(shapes[0]!.module)!.a.buffer).toBe(f32.safetensors.buffer); // the cached adapter is untouched
  });

  it("a 16-bit factor (as the runner's cache holds F16 files) goes widened to F32 in a new, transferred array", () => {
    const shapes = [{ module: "model.layers.0.self_attn.q_proj", rank: 4, inFeatures: 32, outFeatures: 24 }];
    const f16 = writePeftAdapter(randomLoraAdapter(createRng(3), shapes), { dtype: "F16" });
    const halves = loadPeftAdapter(f16.config, f16.safetensors, { keepHalves: true });
    const { job: sent, transfer } = jobForThread({ terms: [{ adapter: halves, weight: 2 }], options: { strategy: "svd" as const }, baseModel: "m" });
    const m = halves.modules.get(shapes[0]!.module)!;
    const s = sent.terms[0]!.adapter.modules.get(shapes[0]!.module)!;
    expect(m.a).toBeInstanceOf(HalfFactor);
    for (const part of ["a", "b"] as const) {
      expect(s[part]).toBeInstanceOf(Float32Array);
      expect(s[part]).toEqual(factorValues(m[part]));
      expect(transfer).toContain(s[part].buffer);
    }
    expect(transfer).toHaveLength(2);
  });
});
