import { describe, expect, it } from "vitest";
import { chooseChunkWidth, chunkBlock, chunkCost } from "./lora-chunks.js";
import { randomMix, seededRandom } from "./testing/random-mix.js";

/** chooseChunkWidth's Semantics as written: the argmin over the sorted candidates, ties → larger K. */
function plainChunkWidth(ranks: readonly number[]): number {
  if (ranks.length === 0) return 0;
  const max = Math.max(...ranks);
  let best = max;
  let bestCost = Infinity;
  for (const k of [...new Set([...ranks, 4, 8, 16, 32, 64])].filter((k) => k <= max).sort((a, b) => b - a)) {
    const cost = chunkCost(ranks, k);
    if (cost < bestCost) {
      best = k;
      bestCost = cost;
    }
  }
  return best;
}

describe("rank chunks", () => {
  it("chooseChunkWidth: equal ranks → one chunk per row; mixed ranks → the width with the least fed columns + overhead", () => {
    expect(chooseChunkWidth([])).toBe(0);
    expect(chooseChunkWidth([16, 16, 16])).toBe(16);
    expect(chooseChunkWidth([40, 8, 8, 8])).toBe(8); // 8 chunks · 12 = 96 < 4 · 44 = 176
    expect(chooseChunkWidth([96, 8, 16, 24])).toBe(24); // 7 chunks · 28 = 196 < K = 8: 18 · 12 = 216
    expect(chooseChunkWidth([13, 16])).toBe(16); // 2 · 20 = 40 < 13: 3·17 = 51
    expect(chooseChunkWidth([3])).toBe(3);
  });

  it("chooseChunkWidth equals the plain argmin over sorted candidates (ties → larger K) on random rank lists, asked once or twice in a row", () => {
    const rand = seededRandom(17);
    for (let t = 0; t < 2000; t++) {
      const n = 1 + Math.floor(rand() * 40);
      const top = [8, 24, 100, 130][t % 4]!;
      const ranks = Array.from({ length: n }, () => (t % 3 === 0 ? 8 * (1 + Math.floor(rand() * (top / 8))) : 1 + Math.floor(rand() * top)));
      expect(chooseChunkWidth(ranks), ranks.join(",")).toBe(plainChunkWidth(ranks));
      expect(chooseChunkWidth([...ranks]), `again: ${ranks.join(",")}`).toBe(plainChunkWidth(ranks)); // the same ranks again (the last answer)
      if (t % 5 === 0) ranks[0] = ranks[0]! + 8; // then ranks of the same length that differ in one value
      expect(chooseChunkWidth(ranks), ranks.join(",")).toBe(plainChunkWidth(ranks));
    }
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
