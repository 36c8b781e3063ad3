import { describe, expect, it } from "vitest";
import { f16BitsToF32Bits, f16ToF32Reference } from "../dtype/f16.js";
import { loadPeftAdapter } from "../peft/load-peft-adapter.js";
import { writePeftAdapter } from "../peft/write-peft-adapter.js";
import { randomLoraAdapter } from "../random/random-adapter.js";
import { createRng } from "../random/xoshiro128.js";
import { allocateKernelBytes, f16ToF32InMemory, simdKernelsAvailable, wasWidened } from "../simd/kernels.js";
import { expectFormatError } from "../testing/expect-format-error.js";
import { expectSameBits, isNonFiniteHalf, SPECIAL_HALVES } from "../testing/same-bits.js";
import { allocateSafetensorsBytes } from "./widen-in-place.js";

/** Odd shapes: tensors end inside a vector of 8 halves and start at every alignment. */
const ODD_MODULES = [
  { module: "model.layers.0.self_attn.q_proj", rank: 3, inFeatures: 17, outFeatures: 13 },
  { module: "model.layers.0.mlp.up_proj", rank: 5, inFeatures: 16, outFeatures: 37 },
  { module: "model.layers.1.self_attn.v_proj", rank: 8, inFeatures: 64, outFeatures: 33 },
];
/** The file received as `safetensorsTarget` does it: placed for widening, written in. */
function received(file: Uint8Array): Uint8Array {
  const bytes = allocateSafetensorsBytes(file.length, file, { minBytes: 0 });
  bytes.set(file);
  return bytes;
}

describe.skipIf(!simdKernelsAvailable())("F16 → F32 inside a kernel Memory", () => {
  it("equals the reference for all 65 536 halves, apart and overlapping as the in-place layout does", () => {
    const n = 65536;
    for (const layout of ["apart", "in place"] as const) {
      // In place: halves in the upper half of the output's bytes (dst + 2n = src), as widen-in-place.ts lays them.
      const bytes = allocateKernelBytes(6 * n + 64, { minBytes: 0 });
      const dst = 16;
      const src = layout === "apart" ? dst + 4 * n : dst + 2 * n;
      new Uint16Array(bytes.buffer, src, n).forEach((_, i, a) => (a[i] = i));
      expect(f16ToF32InMemory(bytes.buffer, src, dst, n, f16BitsToF32Bits)).toBe(false);
      expectSameBits(new Float32Array(bytes.buffer, dst, n), f16ToF32Reference(new Uint16Array(n).map((_, i) => i)), layout);
    }
  });

  it("every length 0…40, a special value at every position, vector body and tail, in place", () => {
    const rng = createRng(11);
    for (let n = 0; n <= 40; n++) {
      const halves = new Uint16Array(n).map(() => rng.nextUint32() & 0xbbff); // finite
      for (const at of [-1, ...Array.from({ length: n }, (_, i) => i)]) {
        const src = halves.slice();
        if (at >= 0) src[at] = SPECIAL_HALVES[at % SPECIAL_HALVES.length];
        const bytes = allocateKernelBytes(4 * n + 64, { minBytes: 0 });
        const dst = 16;
        new Uint16Array(bytes.buffer, dst + 2 * n, n).set(src);
        new Uint32Array(bytes.buffer, dst + 4 * n, 4).fill(0xdeadbeef); // after the output: must stay
        const finite = f16ToF32InMemory(bytes.buffer, dst + 2 * n, dst, n, f16BitsToF32Bits);
        expect(finite, `n=${n} at=${at}`).toBe(!src.some(isNonFiniteHalf));
        expectSameBits(new Float32Array(bytes.buffer, dst, n), f16ToF32Reference(src), `n=${n} at=${at}`);
        expect([...new Uint32Array(bytes.buffer, dst + 4 * n, 4)]).toEqual([0xdeadbeef, 0xdeadbeef, 0xdeadbeef, 0xdeadbeef]);
        expect(new Uint32Array(bytes.buffer, 0, 4).every((w) => w === 0)).toBe(true); // before it too
      }
    }
  });

  it("refuses a layout where a store would overwrite halves not yet read, and a plain buffer", () => {
    const bytes = allocateKernelBytes(1024, { minBytes: 0 });
    expect(() => f16ToF32InMemory(bytes.buffer, 64 + 2 * 16 - 2, 64, 16, f16BitsToF32Bits)).toThrow(/overwrite/);
    expect(() => f16ToF32InMemory(bytes.buffer, 64, 64, 16, f16BitsToF32Bits)).toThrow(/overwrite/);
    expect(() => f16ToF32InMemory(bytes.buffer, 64, 66, 16, f16BitsToF32Bits)).toThrow(/misaligned/);
    expect(f16ToF32InMemory(new ArrayBuffer(1024), 0, 512, 16, f16BitsToF32Bits)).toBeNull();
  });
});

describe.skipIf(!simdKernelsAvailable())("an all-F16 adapter received for widening in place", () => {
  const adapter = randomLoraAdapter(createRng(5), ODD_MODULES);
  const file = writePeftAdapter(adapter, { dtype: "F16" });

  it("loads bit for bit as the same file in a plain buffer, its values in the received Memory, no bigger than needed", () => {
    const bytes = received(file.safetensors);
    const plain = loadPeftAdapter(file.config, file.safetensors);
    const widened = loadPeftAdapter(file.config, bytes);
    expect([...widened.modules.keys()]).toEqual([...plain.modules.keys()]);
    let valueBytes = 0;
    for (const [k, m] of plain.modules) {
      const w = widened.modules.get(k)!;
      expectSameBits(w.a, m.a, `${k} A`);
      expectSameBits(w.b, m.b, `${k} B`);
      expect(w.a.buffer).toBe(bytes.buffer);
      expect(w.b.buffer).toBe(bytes.buffer);
      valueBytes += m.a.byteLength + m.b.byteLength;
    }
    // The F32 values end where the file ends: the Memory holds the lead + the file, one page rounded.
    const headerBytes = new DataView(file.safetensors.buffer, file.safetensors.byteOffset).getUint32(0, true);
    expect((bytes.byteOffset + bytes.length - valueBytes) % 16).toBe(0);
    expect(bytes.byteOffset + bytes.length - valueBytes).toBeGreaterThanOrEqual(0);
    expect(bytes.byteOffset + bytes.length - valueBytes).toBeLessThan(8 + headerBytes + 16);
    expect(bytes.buffer.byteLength).toBe(Math.ceil((bytes.byteOffset + bytes.length) / 65536) * 65536);
    // Used up: a second load says so instead of reading what the first one wrote.
    expect(wasWidened(bytes)).toBe(true);
    expect(() => loadPeftAdapter(file.config, bytes)).toThrow(/widened to F32 in place by an earlier load/);
  });

  it("NaN / ±Inf at the first and the last value of every tensor: refused with the same error as the plain load", () => {
    const plain = loadPeftAdapter(file.config, file.safetensors);
    for (const [module, m] of plain.modules) {
      for (const part of ["a", "b"] as const) {
        for (const index of [0, m[part].length - 1]) {
          for (const half of [0x7e00, 0x7c00, 0xfc00]) {
            // Locate the tensor's halves in the file by writing a marker through a plain reload.
            const poisoned = file.safetensors.slice();
            const tensors = [...(loadFileTensors(poisoned))];
            const t = tensors.find((x) => x.name === `base_model.model.${module}.lora_${part.toUpperCase()}.weight`)!;
            new Uint16Array(poisoned.buffer, t.byteOffset, t.length)[index] = half;
            const value = f16ToF32Reference(new Uint16Array([half]))[0];
            const expected = new RegExp(`lora_${part.toUpperCase()}.weight" has a non-finite value \\(${String(value).replace("-", "\\-")}\\) at flat index ${index}`);
            expectFormatError(() => loadPeftAdapter(file.config, poisoned), "non_finite_weight", expected);
            const bytes = received(poisoned);
            expectFormatError(() => loadPeftAdapter(file.config, bytes), "non_finite_weight", expected);
            expect(wasWidened(bytes)).toBe(true); // the check ran on the widened values
          }
        }
      }
    }
  });

  it("other files, other buffers and copy: true are left as they are (loads equal, bytes reusable)", () => {
    const f32 = writePeftAdapter(adapter, { dtype: "F32" });
    for (const [what, cfg, bytes, opts] of [
      ["F32 file", f32.config, received(f32.safetensors), {}],
      ["BF16 file", file.config, received(writePeftAdapter(adapter, { dtype: "BF16" }).safetensors), {}],
      ["F16 with copy: true", file.config, received(file.safetensors), { copy: true }],
      ["F16, header not in the head", file.config, receivedWithHead(file.safetensors, 8), {}],
      ["F16 in plain kernel bytes", file.config, inKernelBytes(file.safetensors), {}],
    ] as const) {
      const first = loadPeftAdapter(cfg, bytes, opts);
      const again = loadPeftAdapter(cfg, bytes, opts);
      expect(wasWidened(bytes), what).toBe(false);
      for (const [k, m] of first.modules) expectSameBits(again.modules.get(k)!.a, m.a, `${what} ${k}`);
    }
  });
});

/** Tensor names and where their data lies in `bytes` (from the header). */
function loadFileTensors(bytes: Uint8Array): Array<{ name: string; byteOffset: number; length: number }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const headerBytes = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerBytes))) as Record<string, { data_offsets: [number, number] }>;
  return Object.entries(header)
    .filter(([name]) => name !== "__metadata__")
    .map(([name, info]) => ({ name, byteOffset: bytes.byteOffset + 8 + headerBytes + info.data_offsets[0], length: (info.data_offsets[1] - info.data_offsets[0]) / 2 }));
}

function receivedWithHead(file: Uint8Array, headBytes: number): Uint8Array {
  const bytes = allocateSafetensorsBytes(file.length, file.subarray(0, headBytes), { minBytes: 0 });
  bytes.set(file);
  return bytes;
}

function inKernelBytes(file: Uint8Array): Uint8Array {
  const bytes = allocateKernelBytes(file.length, { minBytes: 0 });
  bytes.set(file);
  return bytes;
}
