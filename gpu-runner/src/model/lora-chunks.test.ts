import { describe, expect, it } from "vitest";
import { chooseChunkWidth, chunkBlock } from "./lora-chunks.js";
import { randomMix } from "./testing/random-mix.js";

describe("rank chunks", () => {
  it("chooseChunkWidth: equal ranks → one chunk per row; mixed ranks → the width with the least fed columns + overhead", () => {
    expect(chooseChunkWidth([])).toBe(0);
    expect(chooseChunkWidth([16, 16, 16])).toBe(16);
    expect(chooseChunkWidth([40, 8, 8, 8])).toBe(8); // 8 chunks · 12 = 96 < 4 · 44 = 176
    expect(chooseChunkWidth([96, 8, 16, 24])).toBe(24); // 7 chunks · 28 = 196 < K = 8: 18 · 12 = 216
    expect(chooseChunkWidth([13, 16])).toBe(16); // 2 · 20 = 40 < 13: 3·17 = 51
    expect(chooseChunkWidth([3])).toBe(3);
  });

  it("chunkBlock: chunk c holds columns [cK, cK+K) of Aᵗ and rows of Bᵗ, zero beyond r; K = r is the module's own arrays; kept per module", () => {
    const m = randomMix([{ module: "m", in: 3, out: 2 }], () => 5, 7).modules.get("m")!;
    const b = chunkBlock(m, 2);
    expect(b.count).toBe(3);
    for (let c = 0; c < 3; c++)
      for (let x = 0; x < 3; x++)
        for (let j = 0; j < 2; j++) expect(b.at[(c * 3 + x) * 2 + j]).toBe(c * 2 + j < 5 ? m.at[x * 5 + c * 2 + j] : 0);
    expect(Array.from(b.bt.subarray(0, 10))).toEqual(Array.from(m.bt));
    expect(Array.from(b.bt.subarray(10))).toEqual([0, 0]);
    expect(chunkBlock(m, 2)).toBe(b);
    const own = chunkBlock(m, 5);
    expect(own.at).toBe(m.at);
    expect(own.bt).toBe(m.bt);
  });
});
