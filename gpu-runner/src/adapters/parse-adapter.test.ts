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
    expect(adapterBytes(parsed)).toBe(files.safetensors.length); // the blob the views keep alive
    expect(adapterBytes(converted)).toBe(4 * [...converted.modules.values()].reduce((n, m) => n + m.a.length + m.b.length, 0));
  });

  it("the cache counts what an adapter keeps alive: a blob padded with metadata counts whole, a factor copied out of it counts alone", () => {
    const adapter = randomLoraAdapter(createRng(23), [{ module: "model.layers.0.self_attn.q_proj", rank: 2, inFeatures: 16, outFeatures: 16 }]);
    const files = writePeftAdapter(adapter, { dtype: "F16", metadata: { format: "pt", padding: "x".repeat(1 << 20) } });
    const parsed = parseAdapter(JSON.stringify(files.config), files.safetensors);
    expect(adapterBytes(parsed)).toBe(files.safetensors.length);
    expect(adapterBytes(parsed)).toBeGreaterThan(1 << 20);
    const copied = loadPeftAdapter(files.config, files.safetensors, { keepHalves: true, copy: true });
    expect(adapterBytes(copied)).toBe(2 * 2 * 2 * 16); // A and B, 32 halves each, each its own buffer
  });

  it("F32 stays zero-copy", () => {
    const adapter = randomLoraAdapter(createRng(22), [{ module: "model.layers.0.self_attn.q_proj", rank: 4, inFeatures: 64, outFeatures: 64 }]);
    const f32 = writePeftAdapter(adapter, { dtype: "F32" });
    const m = parseAdapter(JSON.stringify(f32.config), f32.safetensors).modules.values().next().value!;
    expect((m.a as Float32Array).buffer).toBe(f32.safetensors.buffer);
    expect((m.b as Float32Array).buffer).toBe(f32.safetensors.buffer);
  });
});
