// Merged sessions write W′ through views of their weights copy (merge-weights.ts `weightView`): a
// view must share memory, never copy (a copy would leave the merged session's W unmerged), and a
// layout that would need a copy is refused, naming the weight — by createMerged, not at load (a model
// never merged still serves).
import { describe, expect, it } from "vitest";
import { loadBackend } from "../backend/index.js";
import { ensureModel } from "../model-build/index.js";
import { createByteTokenizer } from "../tokenizer/index.js";
import { f16ToNumber, numberToF16 } from "#core/dtype/f16";
import { weightView, WeightMerger } from "./merge-weights.js";
import { readModelDir } from "./model-dir.js";
import { createOnnxModel } from "./onnx-model.js";
import { randomMix } from "./testing/random-mix.js";

describe("weightView", () => {
  it("shares the buffer's memory (a write through it lands in the buffer)", () => {
    const bytes = new Uint8Array(256);
    const w = weightView(Float32Array, bytes, "w", { offset: 64, length: 16 });
    w[1] = 1.5;
    expect(new Float32Array(bytes.buffer, 64, 4)[1]).toBe(1.5);
    expect(w.buffer).toBe(bytes.buffer);
    const h = weightView(Uint16Array, bytes.subarray(2), "h", { offset: 2, length: 4 });
    h[0] = 7;
    expect(new Uint16Array(bytes.buffer, 4, 1)[0]).toBe(7);
  });

  it("refuses a weight not aligned to its elements (in the file or in memory) or outside the buffer, naming it", () => {
    const bytes = new Uint8Array(256);
    expect(() => weightView(Float32Array, bytes, "layers.0.q_proj.weight", { offset: 66, length: 16 })).toThrow(/layers\.0\.q_proj\.weight .*not aligned to its 4-byte elements/);
    expect(() => weightView(Float32Array, bytes, "w", { offset: 64, length: 10 })).toThrow(/not aligned/);
    // Aligned in the file but not in memory (a buffer starting at byte 2), and the other way round.
    expect(() => weightView(Float32Array, bytes.subarray(2), "w", { offset: 64, length: 16 })).toThrow(/not aligned/);
    expect(() => weightView(Float32Array, bytes.subarray(2), "w", { offset: 62, length: 16 })).toThrow(/not aligned/);
    expect(() => weightView(Float32Array, bytes, "w", { offset: 248, length: 16 })).toThrow(/lies outside the 256-byte weights file/);
  });
});

describe("WeightMerger in place through a weight view", () => {
  it("writes W′ = W + Aᵗ·Bᵗ over W in the copy's own bytes; the base stays as it was", async () => {
    const backend = await loadBackend("node");
    const merger = new WeightMerger(backend);
    try {
      const [I, O, R] = [3, 2, 1];
      const base = new Uint8Array(128);
      const W = weightView(Float32Array, base, "w", { offset: 64, length: I * O * 4 });
      W.set([1, 2, 3, 4, 5, 6]); // [in, out]
      const copy = base.slice();
      const at = Float32Array.from([1, 2, 3]); // [in, R]
      const bt = Float32Array.from([10, 100]); // [R, out]
      await merger.mergeInPlace(weightView(Float32Array, copy, "w", { offset: 64, length: I * O * 4 }), "in_out", { module: "m", rank: R, inFeatures: I, outFeatures: O, at, bt });
      expect([...new Float32Array(copy.buffer, 64, I * O)]).toEqual([11, 102, 23, 204, 35, 306]);
      expect([...W]).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await merger.dispose();
    }
  });

  // Sizes past one GEMM tile (MLAS packs 16-wide panels), so an in-place hazard between the copy of C
  // and the accumulation would show; values exact in fp32 (small integers). Multi-threaded sizes are
  // merged in place by the model tests (merged ≡ unmerged on real models).
  for (const backendName of ["node", "web"] as const) {
    for (const layout of ["in_out", "out_in"] as const) {
      for (const dtype of ["float32", "float16"] as const) {
        it(`${backendName} ${layout} ${dtype}: equals W + Σ_c at·bt computed in JS`, async () => {
          const merger = new WeightMerger(await loadBackend(backendName));
          try {
            const [I, O, R] = [67, 45, 5];
            const at = Float32Array.from({ length: I * R }, (_, i) => ((i * 7) % 5) - 2); // [in, R]
            const bt = Float32Array.from({ length: R * O }, (_, i) => ((i * 3) % 7) - 3); // [R, out]
            const w32 = Float32Array.from({ length: I * O }, (_, i) => ((i * 11) % 9) - 4); // W in `layout`
            const expected = new Float32Array(I * O);
            for (let x = 0; x < I; x++) {
              for (let y = 0; y < O; y++) {
                let d = 0;
                for (let c = 0; c < R; c++) d += at[x * R + c] * bt[c * O + y];
                const k = layout === "in_out" ? x * O + y : y * I + x;
                expected[k] = w32[k] + d;
              }
            }
            const module = { module: "m", rank: R, inFeatures: I, outFeatures: O, at, bt };
            if (dtype === "float32") {
              const w = w32.slice();
              await merger.mergeInPlace(w, layout, module);
              expect([...w]).toEqual([...expected]);
            } else {
              const w = Uint16Array.from(w32, numberToF16); // small integers: exact in fp16
              await merger.mergeInPlace(w, layout, module);
              expect([...w].map(f16ToNumber)).toEqual([...expected].map((v) => f16ToNumber(numberToF16(v))));
            }
          } finally {
            await merger.dispose();
          }
        });
      }
    }
  }
});

describe("a model whose merge targets are misaligned in memory (real tiny model)", () => {
  it("loads and serves unmerged, notes why at load; createMerged refuses a mix touching such a target, naming the weight", async () => {
    const files = await readModelDir(await ensureModel("loraedge-tiny"));
    expect(files.manifest.tokenizer.kind).toBe("byte");
    // The same weights file starting at byte 2 of its buffer: every float32 view would be misaligned.
    const shifted = new Uint8Array(files.weights.byteLength + 2);
    shifted.set(files.weights, 2);
    const weights = shifted.subarray(2);
    const model = await createOnnxModel({
      backend: await loadBackend("node"),
      manifest: files.manifest,
      spec: files.spec,
      graph: files.graph,
      weights,
      tokenizer: createByteTokenizer(),
      sessionOptions: { threads: 1 },
      loraVariants: "off",
    });
    try {
      expect(model.unmergeable.length).toBe(files.spec.targets.length);
      expect(model.unmergeable[0]).toMatch(/not aligned to its 4-byte elements/);
      const mix = randomMix(files.manifest.targets, () => 2, 3);
      const [out] = await model.step([{ tokens: [1, 2, 3], cache: null, mix: files.manifest.targets.some((t) => t.mode === "merge-only") ? null : mix }]);
      expect(out!.logits.every(Number.isFinite)).toBe(true);
      const first = files.spec.targets.find((t) => t.module === [...mix.modules.keys()][0])!;
      await expect(model.createMerged(mix)).rejects.toThrow(new RegExp(`cannot merge module ${first.module}: weight ${first.weight.replace(/\./g, "\\.")} .*not aligned`));
    } finally {
      await model.dispose();
    }
  });
});
