import { describe, expect, it } from "vitest";
import { loadPeftAdapter, writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { KERNEL_MIN_BYTES } from "#core/simd/index";
import { parseAdapter, uninitializedFloat32 } from "./parse-adapter.js";

describe("the runner's adapter parse", () => {
  it("uninitializedFloat32: exactly `length` floats, each array in its own 4-aligned memory", () => {
    const arrays = [0, 1, 7, 4096, 300_000].map((n) => uninitializedFloat32(n));
    expect(arrays.map((a) => a.length)).toEqual([0, 1, 7, 4096, 300_000]);
    for (const a of arrays) {
      expect(a).toBeInstanceOf(Float32Array);
      expect(a.byteOffset % 4).toBe(0);
      expect(a.buffer.byteLength).toBe(a.byteLength); // not a slice of a shared pool
    }
    expect(new Set(arrays.map((a) => a.buffer)).size).toBe(arrays.length);
  });

  it("F16 into uninitialized memory equals core's plain load bit for bit; F32 stays zero-copy", () => {
    const adapter = randomLoraAdapter(createRng(21), [
      { module: "model.layers.0.self_attn.q_proj", rank: 16, inFeatures: 2053, outFeatures: 1031 }, // A crosses the kernel's 32 768-half chunks, odd tails
      { module: "model.layers.0.self_attn.v_proj", rank: 3, inFeatures: 17, outFeatures: 13 },
    ]);
    // Dirty the heap first, so the uninitialized arrays are likely to reuse memory that held values.
    for (let i = 0; i < 8; i++) uninitializedFloat32(40_000).fill(Number.NaN);
    const f16 = writePeftAdapter(adapter, { dtype: "F16" });
    const parsed = parseAdapter(JSON.stringify(f16.config), f16.safetensors);
    const plain = loadPeftAdapter(f16.config, f16.safetensors);
    for (const [k, m] of plain.modules) {
      const got = parsed.modules.get(k)!;
      for (const part of ["a", "b"] as const) expect(Buffer.from(got[part].buffer, got[part].byteOffset, got[part].byteLength).equals(Buffer.from(m[part].buffer, m[part].byteOffset, m[part].byteLength)), `${k} ${part}`).toBe(true);
    }
    const f32 = writePeftAdapter(adapter, { dtype: "F32" });
    expect(parseAdapter(JSON.stringify(f32.config), f32.safetensors).modules.values().next().value!.a.buffer).toBe(f32.safetensors.buffer);
  });

  it("a file from 1 MiB: each converted tensor in its own uninitialized buffer (exactly its size), equal bit for bit to core's plain load", () => {
    const adapter = randomLoraAdapter(createRng(22), [
      { module: "model.layers.0.self_attn.q_proj", rank: 64, inFeatures: 4096, outFeatures: 4096 },
      { module: "model.layers.0.self_attn.v_proj", rank: 7, inFeatures: 4099, outFeatures: 13 },
    ]);
    const f16 = writePeftAdapter(adapter, { dtype: "F16" });
    expect(f16.safetensors.length).toBeGreaterThanOrEqual(KERNEL_MIN_BYTES);
    const parsed = parseAdapter(JSON.stringify(f16.config), f16.safetensors);
    const plain = loadPeftAdapter(f16.config, f16.safetensors);
    const arrays = [...parsed.modules.values()].flatMap((m) => [m.a, m.b]);
    expect(arrays.every((a) => a.byteOffset === 0 && a.buffer.byteLength === a.byteLength)).toBe(true);
    expect(new Set(arrays.map((a) => a.buffer)).size).toBe(arrays.length);
    for (const [k, m] of plain.modules) {
      const got = parsed.modules.get(k)!;
      for (const part of ["a", "b"] as const) expect(Buffer.from(got[part].buffer, got[part].byteOffset, got[part].byteLength).equals(Buffer.from(m[part].buffer, m[part].byteOffset, m[part].byteLength)), `${k} ${part}`).toBe(true);
    }
  });
});
