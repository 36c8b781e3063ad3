import { describe, expect, it } from "vitest";
import { HalfFactor, factorValues } from "#core/lora/factor";
import { loadPeftAdapter, writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { adapterBytes } from "./adapter-cache.js";
import { parseAdapter } from "./parse-adapter.js";

describe("the runner's adapter parse", () => {
  it.each(["F16", "BF16"] as const)("%s: every factor stays 16-bit, a view of the received bytes, equal to core's converting load once widened; half its bytes", (dtype) => {
    const adapter = randomLoraAdapter(createRng(21), [
      { module: "model.layers.0.self_attn.q_proj", rank: 16, inFeatures: 2053, outFeatures: 1031 }, // A crosses the scan's 32 768-half chunks, odd tails
      { module: "model.layers.0.self_attn.v_proj", rank: 3, inFeatures: 17, outFeatures: 13 },
    ]);
    const files = writePeftAdapter(adapter, { dtype });
    const parsed = parseAdapter(JSON.stringify(files.config), files.safetensors);
    const converted = loadPeftAdapter(files.config, files.safetensors);
    for (const [k, m] of converted.modules) {
      const got = parsed.modules.get(k)!;
      for (const part of ["a", "b"] as const) {
        const x = got[part] as HalfFactor;
        expect(x).toBeInstanceOf(HalfFactor);
        expect(x.bits.buffer).toBe(files.safetensors.buffer);
        const want = m[part];
        expect(Buffer.from(factorValues(x).buffer).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)), `${k} ${part}`).toBe(true);
      }
    }
    expect(adapterBytes(parsed) * 2).toBe(adapterBytes(converted));
  });

  it("F32 stays zero-copy", () => {
    const adapter = randomLoraAdapter(createRng(22), [{ module: "model.layers.0.self_attn.q_proj", rank: 4, inFeatures: 64, outFeatures: 64 }]);
    const f32 = writePeftAdapter(adapter, { dtype: "F32" });
    const m = parseAdapter(JSON.stringify(f32.config), f32.safetensors).modules.values().next().value!;
    expect((m.a as Float32Array).buffer).toBe(f32.safetensors.buffer);
    expect((m.b as Float32Array).buffer).toBe(f32.safetensors.buffer);
  });
});
