// Merged sessions write W′ through views of their weights copy (merge-weights.ts `weightView`): a
// view must share memory, never copy (a copy would leave the merged session's W unmerged), and a
// layout that would need a copy is refused, naming the weight.
import { describe, expect, it } from "vitest";
import { loadBackend } from "../backend/index.js";
import { weightView, WeightMerger } from "./merge-weights.js";

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

describe("WeightMerger through weight views", () => {
  it("writes W′ = W + Aᵗ·Bᵗ into the copy's own bytes; the base stays as it was", async () => {
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
      await merger.merge(W, "in_out", { module: "m", rank: R, inFeatures: I, outFeatures: O, at, bt }, weightView(Float32Array, copy, "w", { offset: 64, length: I * O * 4 }));
      expect([...new Float32Array(copy.buffer, 64, I * O)]).toEqual([11, 102, 23, 204, 35, 306]);
      expect([...W]).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await merger.dispose();
    }
  });
});
