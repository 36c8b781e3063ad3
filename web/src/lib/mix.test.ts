import { describe, expect, it } from "vitest";
import { mixCost } from "./mix.js";

describe("mixCost", () => {
  it("adds ranks per module (cat of the factors) and takes the largest; bytes add up", () => {
    const cost = mixCost([
      { rank: 4, targets: ["q", "v"], size_bytes: 100 },
      { rank: 8, targets: ["q"], size_bytes: 300 },
      { rank: 2, targets: ["k"], size_bytes: 10 },
    ]);
    expect(cost).toEqual({ rank: 12, bytes: 410, modules: 3 });
    expect(mixCost([])).toEqual({ rank: 0, bytes: 0, modules: 0 });
  });
});
