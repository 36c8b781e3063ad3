import { describe, expect, it } from "vitest";
import { loadPeftAdapter, writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { allFiniteInPlace, KERNEL_MIN_BYTES, simdKernelsAvailable, wasWidened } from "#core/simd/index";
import { joinChunks, leadingBytes, safetensorsTarget } from "./receive-bytes.js";

const split = (bytes: Uint8Array, size: number) => Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size));

describe("receiving bytes from chunks", () => {
  it("leadingBytes: a view inside the first chunk, else the bytes joined across chunks, never more than there are", () => {
    const bytes = Uint8Array.from({ length: 50 }, (_, i) => i);
    const chunks = split(bytes, 7);
    expect(leadingBytes(chunks, 5).buffer).toBe(bytes.buffer);
    expect([...leadingBytes(chunks, 20)]).toEqual([...bytes.subarray(0, 20)]);
    expect([...leadingBytes(chunks, 80)]).toEqual([...bytes]);
    expect(leadingBytes([], 8).length).toBe(0);
    expect([...joinChunks(chunks, 50)]).toEqual([...bytes]);
  });

  it.skipIf(!simdKernelsAvailable())("safetensorsTarget places a blob from 1 MiB whose header spans many chunks for its load: F32 scanned in place, all-F16 widened in place, both equal to the plain load", () => {
    const adapter = randomLoraAdapter(createRng(4), [
      { module: "model.layers.0.self_attn.q_proj", rank: 64, inFeatures: 2048, outFeatures: 2048 },
      { module: "model.layers.0.self_attn.v_proj", rank: 63, inFeatures: 4099, outFeatures: 2051 },
    ]);
    const same = (x: ArrayBufferView, y: ArrayBufferView) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
    for (const dtype of ["F32", "F16"] as const) {
      const file = writePeftAdapter(adapter, { dtype });
      expect(file.safetensors.length).toBeGreaterThan(KERNEL_MIN_BYTES);
      const received = joinChunks(split(file.safetensors, 13), file.safetensors.length, safetensorsTarget);
      expect(same(received, file.safetensors)).toBe(true);
      const loaded = loadPeftAdapter(file.config, received);
      expect(wasWidened(received)).toBe(dtype === "F16");
      const plain = loadPeftAdapter(file.config, file.safetensors);
      for (const [k, m] of plain.modules) {
        const got = loaded.modules.get(k)!;
        expect(got.a.buffer).toBe(received.buffer); // where it was received, no copy
        expect(same(got.a, m.a) && same(got.b, m.b), `${dtype} ${k}`).toBe(true); // bit for bit
        if (dtype === "F32") expect(allFiniteInPlace(got.b)).toBe(true); // scannable where it lies
      }
    }
  });
});
