import { describe, expect, it } from "vitest";
import { f16AllFinite, f16BitsToF32Bits, f16ToF32AllFinite, f16ToF32Reference, f16ToF32Table } from "../dtype/f16.js";
import { firstNonFinite, loadPeftAdapter } from "../peft/load-peft-adapter.js";
import { writePeftAdapter } from "../peft/write-peft-adapter.js";
import { randomLoraAdapter } from "../random/random-adapter.js";
import { createRng } from "../random/xoshiro128.js";
import { expectFormatError } from "../testing/expect-format-error.js";
import { bitsOf, expectSameBits, isNonFiniteHalf, SPECIAL_HALVES } from "../testing/same-bits.js";
import { kernelModuleBytes } from "./kernel-module.js";
import { allFiniteInPlace, allFiniteStreamed, allocateKernelBytes, allWithinStreamed, f16ToF32Simd, float32LimitBits, KERNEL_MIN_BYTES, simdKernelsAvailable, transposer } from "./kernels.js";


describe("WebAssembly SIMD kernels", () => {
  it("the hand-assembled module validates and runs in Node", () => {
    const api = (globalThis as unknown as { WebAssembly: { validate(bytes: Uint8Array): boolean } }).WebAssembly;
    expect(api.validate(kernelModuleBytes())).toBe(true);
    expect(simdKernelsAvailable()).toBe(true);
  });

  it("f16 → f32 equals the plain reference bit for bit for all 65 536 patterns, with the finite flag", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const out = new Float32Array(65536);
    expect(f16ToF32Simd(all, out, f16BitsToF32Bits)).toBe(false); // exponent-31 patterns are in there
    const ref = bitsOf(f16ToF32Reference(all));
    const got = bitsOf(out);
    for (let h = 0; h < 65536; h++) if (got[h] !== ref[h]) throw new Error(`h=${h.toString(16)}: simd ${got[h].toString(16)}, reference ${ref[h].toString(16)}`);
    expect(got[0x8000]).toBe(0x80000000); // −0
    expect(got[0x7c01]).toBe(0x7f802000); // NaN payload kept
    expect(got[0x0001]).toBe(0x33800000); // smallest subnormal 2^−24
  });

  it("f16 → f32 at every length 0…40 and offset, a special value at every position (vector body and tail), across chunk edges", () => {
    const rng = createRng(7);
    const lengths = [...Array.from({ length: 41 }, (_, n) => n), 32767, 32768, 32769, 65536 + 13];
    for (const n of lengths) {
      for (const srcOffset of n <= 40 ? [0, 1, 3] : [1]) {
        const backing = new Uint16Array(n + srcOffset);
        const src = backing.subarray(srcOffset);
        for (let i = 0; i < n; i++) src[i] = rng.nextUint32() & 0xbbff; // finite (exponent ≤ 0b01110 or sign set)
        const positions = n <= 40 ? Array.from({ length: n }, (_, i) => i) : [0, 32768, n - 1];
        for (const at of [-1, ...positions]) {
          const saved = at >= 0 ? src[at] : 0;
          if (at >= 0) src[at] = SPECIAL_HALVES[at % SPECIAL_HALVES.length];
          const outBacking = new Float32Array(n + 2);
          const out = outBacking.subarray(1, n + 1);
          const finite = f16ToF32Simd(src, out, f16BitsToF32Bits);
          expect(finite).toBe(!src.some(isNonFiniteHalf));
          expect(f16AllFinite(src)).toBe(finite);
          const what = `n=${n} srcOffset=${srcOffset} at=${at}`;
          expectSameBits(out, f16ToF32Reference(src), what);
          expect([outBacking[0], outBacking[n + 1]]).toEqual([0, 0]); // nothing written outside `out`
          // The public entry point agrees with the kernel, and so does the table path.
          const viaPublic = new Float32Array(n);
          expect(f16ToF32AllFinite(src, viaPublic)).toBe(finite);
          expectSameBits(viaPublic, out, what);
          expectSameBits(f16ToF32Table(src), out, what);
          if (at >= 0) src[at] = saved;
        }
      }
    }
  });

  it("f16 → f32 into views inside a larger buffer: all 65 536 halves, every length 0…40 and chunk edges, poisoned memory overwritten, neighbours untouched", () => {
    const POISON = 0x7fc0dead;
    const lengths = [65536, ...Array.from({ length: 41 }, (_, n) => n), 32767, 32768, 32769, 65536 + 13];
    const rng = createRng(9);
    for (const n of lengths) {
      const all = new Float32Array(n + 2); // [before, out…, after]
      const [before, out, after] = [all.subarray(0, 1), all.subarray(1, n + 1), all.subarray(n + 1)];
      bitsOf(all).fill(POISON);
      const src = n === 65536 ? new Uint16Array(n).map((_, h) => h) : new Uint16Array(n).map(() => rng.nextUint32() & 0xffff);
      if (n > 0 && n !== 65536) src[n - 1] = 0x3c00; // a finite last value: the flag then depends on the rest
      const finite = f16ToF32Simd(src, out, f16BitsToF32Bits);
      expect(finite, `n=${n}`).toBe(!src.some(isNonFiniteHalf));
      expectSameBits(out, f16ToF32Reference(src), `view n=${n}`);
      expect([bitsOf(before)[0], bitsOf(after)[0]], `n=${n}`).toEqual([POISON, POISON]);
    }
  });

  it("in-place f32 scan: every length 0…70 and offset, NaN / ±Inf at every position; finite extremes pass", () => {
    const nonFinite = [0x7f800000, 0xff800000, 0x7f800001, 0x7fc00000, 0xffffffff];
    const finiteExtremes = [0x00000000, 0x80000000, 0x00000001, 0x007fffff, 0x7f7fffff, 0xff7fffff, 0x3f800000];
    const bytes = allocateKernelBytes(4 * 80, { minBytes: 0 });
    for (let n = 0; n <= 70; n++) {
      for (const offset of [0, 1, 3]) {
        const x = new Float32Array(bytes.buffer, bytes.byteOffset + 4 * offset, n);
        const bits = bitsOf(x);
        for (let i = 0; i < n; i++) bits[i] = finiteExtremes[(i + n) % finiteExtremes.length];
        // Non-finite words just outside the view must not count.
        const all = new Uint32Array(bytes.buffer, bytes.byteOffset, 80);
        if (offset > 0) all[offset - 1] = 0x7f800000;
        if (offset + n < 80) all[offset + n] = 0x7fc00000;
        expect(allFiniteInPlace(x)).toBe(true);
        expect(firstNonFinite(x)).toBe(-1);
        for (let at = 0; at < n; at++) {
          const saved = bits[at];
          bits[at] = nonFinite[at % nonFinite.length];
          expect(allFiniteInPlace(x), `n=${n} offset=${offset} at=${at}`).toBe(false);
          bits[at] = saved;
        }
        all.fill(0);
      }
    }
  });

  it("streamed f32 scan over plain buffers: every length 0…70 and offset, NaN / ±Inf at every position; across 64 KiB chunk edges", () => {
    const nonFinite = [0x7f800000, 0xff800000, 0x7f800001, 0x7fc00000, 0xffffffff];
    const backing = new Uint32Array(80);
    for (let n = 0; n <= 70; n++) {
      for (const offset of [0, 1, 3]) {
        backing.fill(0x3f800000);
        if (offset > 0) backing[offset - 1] = 0x7f800000; // just outside the view: must not count
        if (offset + n < 80) backing[offset + n] = 0x7fc00000;
        const x = new Float32Array(backing.buffer, 4 * offset, n);
        expect(allFiniteStreamed(x)).toBe(true);
        for (let at = 0; at < n; at++) {
          const bits = bitsOf(x);
          const saved = bits[at];
          bits[at] = nonFinite[at % nonFinite.length];
          expect(allFiniteStreamed(x), `n=${n} offset=${offset} at=${at}`).toBe(false);
          bits[at] = saved;
        }
      }
    }
    const chunkValues = 16384; // 64 KiB of f32
    const big = new Float32Array(3 * chunkValues + 21).fill(0.5);
    const x = big.subarray(1); // unaligned to the chunks too
    expect(allFiniteStreamed(x)).toBe(true);
    for (const at of [0, chunkValues - 2, chunkValues - 1, chunkValues, 2 * chunkValues + 7, x.length - 17, x.length - 1]) {
      x[at] = NaN;
      expect(allFiniteStreamed(x), `at=${at}`).toBe(false);
      expect(firstNonFinite(x)).toBe(at);
      x[at] = 0.5;
    }
  });

  it("streamed bound scan (|v| ≤ limit) equals the plain JS test at every length 0…70 and offset, values at and past the limit, ±0, subnormals, ±Inf and NaN at every position; across 64 KiB chunk edges", () => {
    const limit = 1e15;
    const atLimit = Math.fround(limit); // 999999986991104: the largest float32 ≤ 1e15
    const bitsAtLimit = new Uint32Array(new Float32Array([atLimit]).buffer)[0]!;
    expect(atLimit).toBeLessThanOrEqual(limit);
    expect(float32LimitBits(limit)).toBe(bitsAtLimit);
    expect(float32LimitBits(1)).toBe(0x3f800000); // exact in float32
    expect(float32LimitBits(0.1)).toBe(0x3dcccccc); // fround(0.1) = 0x3dcccccd > 0.1: one step down
    const past = new Float32Array(new Uint32Array([bitsAtLimit + 1]).buffer)[0]!; // the next float32 up
    const passing = [0, -0, atLimit, -atLimit, 1.5, -2.25e-40, 1e-45];
    const failing = [past, -past, Infinity, -Infinity, NaN, 3.4e38];
    const backing = new Float32Array(80);
    for (let n = 0; n <= 70; n++) {
      for (const offset of [0, 1, 3]) {
        backing.fill(0.5);
        if (offset > 0) backing[offset - 1] = Infinity; // just outside the view: must not count
        if (offset + n < 80) backing[offset + n] = NaN;
        const x = backing.subarray(offset, offset + n);
        for (let at = 0; at < n; at++) x[at] = passing[at % passing.length]!;
        expect(allWithinStreamed(x, limit), `n=${n} offset=${offset}`).toBe(true);
        for (let at = 0; at < n; at++) {
          const saved = x[at]!;
          x[at] = failing[at % failing.length]!;
          expect(allWithinStreamed(x, limit), `n=${n} offset=${offset} at=${at}`).toBe(false);
          x[at] = saved;
        }
      }
    }
    const chunkValues = 16384; // 64 KiB of f32
    const big = new Float32Array(3 * chunkValues + 21).fill(-atLimit);
    const x = big.subarray(1);
    expect(allWithinStreamed(x, limit)).toBe(true);
    for (const at of [0, chunkValues - 2, chunkValues - 1, chunkValues, 2 * chunkValues + 7, x.length - 17, x.length - 1]) {
      x[at] = -past;
      expect(allWithinStreamed(x, limit), `at=${at}`).toBe(false);
      x[at] = -atLimit;
    }
    expect(float32LimitBits(-0)).toBe(0); // not the sign bit: every word would exceed
    expect(allWithinStreamed(new Float32Array(16), -0)).toBe(true);
    expect(() => allWithinStreamed(x, Infinity)).toThrow(RangeError);
    expect(() => allWithinStreamed(x, -1)).toThrow(RangeError);
  });

  it("block transposes (plain and scaled in f64) equal the plain loops at every shape 0…11 × 0…11, into a strided block at an offset; nothing outside the block written", () => {
    for (let rows = 0; rows <= 11; rows++) {
      for (let cols = 0; cols <= 11; cols++) {
        for (const coef of [undefined, 0.1 * 1.7, -3]) {
          const stride = rows + 3;
          const offset = 2;
          const t = transposer(rows * cols, offset + cols * stride + 1)!;
          const src = Float32Array.from({ length: rows * cols }, (_, i) => Math.fround(Math.cos(7 * i + rows) * 1e3));
          t.src.set(src);
          t.dst.fill(-7);
          t.transpose(rows, cols, offset, stride, coef);
          const want = new Float32Array(t.dst.length).fill(-7);
          for (let k = 0; k < rows; k++) for (let j = 0; j < cols; j++) want[offset + j * stride + k] = coef === undefined ? src[k * cols + j]! : coef * src[k * cols + j]!;
          expect(Array.from(t.dst), `${rows}×${cols} coef ${coef}`).toEqual(Array.from(want));
        }
      }
    }
    // The bound scan in place over the workspace: vector body and tail.
    const w = transposer(0, 37)!;
    w.dst.fill(1e15);
    expect(w.dstWithin(37, 1e15)).toBe(true);
    for (const at of [0, 15, 16, 31, 32, 36]) {
      w.dst[at] = at % 2 ? NaN : -2e15;
      expect(w.dstWithin(37, 1e15), `at ${at}`).toBe(false);
      expect(w.dstWithin(at, 1e15), `before ${at}`).toBe(true); // only [0, floats) is read
      w.dst[at] = 1e15;
    }
    expect(() => w.dstWithin(38, 1)).toThrow(RangeError);
    // A block that does not fit is refused before anything is written.
    const t = transposer(16, 40)!;
    t.dst.fill(-7);
    expect(() => t.transpose(4, 5, 0, 8)).toThrow(RangeError); // 20 source floats > 16
    expect(() => t.transpose(4, 4, 0, 3)).toThrow(RangeError); // stride 3 < 4 rows: columns would overlap
    expect(() => t.transpose(4, 4, 30, 4)).toThrow(RangeError); // 30 + 3·4 + 4 > 40
    expect(Array.from(t.dst)).toEqual(new Array(40).fill(-7));
  });

  it("transposer.widenF16 writes every F16 value widened exactly into src (kernel body and JS tail), from any view, and refuses more than src holds", () => {
    const all = Uint16Array.from({ length: 65536 + 13 }, (_, i) => i & 0xffff); // 13 left for the tail
    const want = f16ToF32Reference(all);
    const t = transposer(all.length, 16)!;
    t.src.fill(-1);
    t.dst.fill(-7);
    t.widenF16(all, f16BitsToF32Bits);
    expectSameBits(t.src, want, "widenF16");
    expect(Array.from(t.dst)).toEqual(new Array(16).fill(-7)); // the staging area is not dst
    const view = new Uint16Array(40).fill(0x3c00).subarray(3, 36); // odd offset, 33 halves: 32 + 1 tail
    view[32] = 0x7e01;
    t.widenF16(view, f16BitsToF32Bits);
    expectSameBits(t.src.subarray(0, 33), f16ToF32Reference(view), "a view");
    expect(t.src[33]).toBe(want[33]); // nothing past the halves written
    expect(() => transposer(8, 8)!.widenF16(new Uint16Array(9), f16BitsToF32Bits)).toThrow(RangeError);
  });

  it("a plain buffer is not scanned in place (null: the caller scans in JS)", () => {
    expect(allFiniteInPlace(new Float32Array(64))).toBeNull();
    expect(allocateKernelBytes(0).length).toBe(0);
    // Small files get a plain buffer (no Memory, no address-space reservation): scanned in JS.
    const small = allocateKernelBytes(KERNEL_MIN_BYTES - 4);
    expect(allFiniteInPlace(new Float32Array(small.buffer, 0, 16))).toBeNull();
    if (simdKernelsAvailable()) {
      const large = allocateKernelBytes(KERNEL_MIN_BYTES);
      expect(allFiniteInPlace(new Float32Array(large.buffer, 0, 16))).toBe(true);
    }
  });

  it("an adapter received into kernel bytes loads equal to the same file in a plain buffer; NaN/Inf refused with the same error", () => {
    // Odd sizes so tensors end inside a vector and start unaligned to 64 bytes.
    const adapter = randomLoraAdapter(createRng(3), [
      { module: "model.layers.0.self_attn.q_proj", rank: 3, inFeatures: 17, outFeatures: 13 },
      { module: "model.layers.0.mlp.up_proj", rank: 5, inFeatures: 16, outFeatures: 37 },
      { module: "model.layers.1.self_attn.v_proj", rank: 8, inFeatures: 64, outFeatures: 33 },
    ]);
    for (const dtype of ["F32", "F16"] as const) {
      const file = writePeftAdapter(adapter, { dtype });
      const received = allocateKernelBytes(file.safetensors.length, { minBytes: 0 });
      received.set(file.safetensors);
      const plain = loadPeftAdapter(file.config, file.safetensors);
      const viaKernel = loadPeftAdapter(file.config, received);
      expect([...viaKernel.modules.keys()]).toEqual([...plain.modules.keys()]);
      for (const [k, m] of plain.modules) {
        expectSameBits(viaKernel.modules.get(k)!.a, m.a, `${dtype} ${k} A`);
        expectSameBits(viaKernel.modules.get(k)!.b, m.b, `${dtype} ${k} B`);
      }
      if (dtype === "F32") expect(viaKernel.modules.values().next().value!.a.buffer).toBe(received.buffer); // zero-copy view
    }
    const file = writePeftAdapter(adapter, { dtype: "F32" });
    const lastModule = [...adapter.modules.keys()].sort().at(-1)!;
    const m = adapter.modules.get(lastModule)!;
    const poisonedIndex = m.b.length - 1; // last value of the file: in the scalar tail or the last vector
    for (const value of [NaN, Infinity, -Infinity]) {
      const received = allocateKernelBytes(file.safetensors.length, { minBytes: 0 });
      received.set(file.safetensors);
      const plainCopy = file.safetensors.slice();
      for (const bytes of [received, plainCopy]) {
        // B is written after A in the file; find B's bytes by value and poison its last element.
        const b = loadPeftAdapter(file.config, bytes).modules.get(lastModule)!.b;
        new Float32Array(b.buffer, b.byteOffset, b.length)[poisonedIndex] = value;
      }
      for (const bytes of [received, plainCopy]) {
        expectFormatError(() => loadPeftAdapter(file.config, bytes), "non_finite_weight", new RegExp(`lora_B.weight" has a non-finite value \\(${String(value).replace("-", "\\-")}\\) at flat index ${poisonedIndex}`));
      }
    }
  });
});
