import { describe, expect, it } from "vitest";
import { createRng, randomUniform } from "../random/index.js";
import { dareDrop, keepCount, kthLargest, tiesMerge, trimTopK, weightedSum } from "./dense-merges.js";

/** Naive top-k: sort indices by (|x| desc, index asc), keep the first k. */
function naiveTrim(x: Float32Array, density: number): Float32Array {
  const k = Math.floor(density * x.length);
  const idx = Array.from(x.keys()).sort((i, j) => Math.abs(x[j]) - Math.abs(x[i]) || i - j);
  const y = new Float32Array(x.length);
  for (const i of idx.slice(0, k)) y[i] = x[i];
  return y;
}

/** Values with many exact ties: small integers with random signs. */
function tiedValues(seed: number, n: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => (Math.floor(rng.nextFloat() * 7) - 3) / 2);
}

describe("kthLargest", () => {
  it("equals sorting, with and without ties", () => {
    for (let seed = 0; seed < 40; seed++) {
      const n = 1 + (seed * 37) % 200;
      const x = seed % 2 ? tiedValues(seed, n) : randomUniform(createRng(seed), n);
      const sorted = Array.from(x).sort((a, b) => b - a);
      for (const k of [1, Math.ceil(n / 3), n]) expect(kthLargest(x.slice(), k)).toBe(sorted[k - 1]);
    }
    expect(() => kthLargest(new Float32Array(3), 0)).toThrow(/k must be in \[1, 3\]/);
  });
});

describe("trimTopK", () => {
  it("equals the naive sort-based top-k (random values, tied values, every density edge)", () => {
    for (let seed = 0; seed < 30; seed++) {
      const n = 1 + (seed * 53) % 300;
      const x = seed % 3 === 0 ? tiedValues(seed, n) : randomUniform(createRng(seed), n);
      for (const density of [1e-9, 0.1, 0.25, 0.5, 0.9, 1]) {
        const y = trimTopK(x, density);
        expect(y).toEqual(naiveTrim(x, density));
        let kept = 0;
        for (let j = 0; j < n; j++) if (y[j] !== 0) kept++;
        expect(kept).toBeLessThanOrEqual(keepCount(density, n));
      }
    }
  });
  it("keeps exactly k entries when ties straddle the threshold (lowest index first)", () => {
    const x = Float32Array.from([1, -2, 2, 0.5, -2, 2]);
    expect(Array.from(trimTopK(x, 0.5))).toEqual([0, -2, 2, 0, -2, 0]);
    expect(Array.from(trimTopK(x, 1))).toEqual(Array.from(x));
  });
});

describe("dareDrop", () => {
  it("density 1 is the identity; survivors are rescaled by 1/density; the kept fraction ≈ density", () => {
    const x = randomUniform(createRng(1), 20_000);
    expect(dareDrop(x, 1, createRng(5))).toEqual(x);
    const density = 0.3;
    const y = dareDrop(x, density, createRng(5));
    const draws = createRng(5);
    let kept = 0;
    let mismatches = 0;
    for (let j = 0; j < x.length; j++) {
      const u = draws.nextFloat();
      if (y[j] !== (u < density ? Math.fround(x[j] / density) : 0)) mismatches++;
      if (y[j] !== 0) kept++;
    }
    expect(mismatches).toBe(0);
    expect(Math.abs(kept / x.length - density)).toBeLessThan(0.02);
    expect(dareDrop(x, density, createRng(5))).toEqual(y);
    expect(dareDrop(x, density, createRng(6))).not.toEqual(y);
  });
});

describe("tiesMerge", () => {
  it("elects signs by the weighted sum and averages the agreeing entries (hand example)", () => {
    const x1 = Float32Array.from([1, -2, 3, 0]);
    const x2 = Float32Array.from([2, 1, -4, 0]);
    expect(Array.from(tiesMerge([x1, x2], [1, 1]))).toEqual([1.5, -2, -4, 0]);
    // negative weight flips the second term: t₂ = [−2, −1, 4, 0]
    expect(Array.from(tiesMerge([x1, x2], [1, -1]))).toEqual([-2, -1.5, 3.5, 0]);
    // a single term is returned weighted
    expect(Array.from(tiesMerge([x1], [-0.5]))).toEqual([-0.5, 1, -1.5, 0]);
  });
  it("equals a naive per-entry reference on random inputs", () => {
    const rng = createRng(8);
    const xs = [0, 1, 2, 3].map(() => trimTopK(randomUniform(rng, 500), 0.4));
    const w = [0.7, -1.2, 2, 0.3];
    const y = tiesMerge(xs, w);
    for (let j = 0; j < 500; j++) {
      const t = xs.map((x, i) => w[i] * x[j]);
      const sigma = Math.sign(t.reduce((s, v) => s + v, 0));
      const agree = t.filter((v) => sigma !== 0 && Math.sign(v) === sigma);
      const ref = agree.length ? agree.reduce((s, v) => s + v, 0) / agree.length : 0;
      expect(y[j]).toBeCloseTo(ref, 6);
    }
  });
  it("weightedSum and input checks", () => {
    expect(Array.from(weightedSum([Float32Array.from([1, 2]), Float32Array.from([3, -4])], [2, 0.5]))).toEqual([3.5, 2]);
    expect(() => tiesMerge([new Float32Array(2)], [1, 2])).toThrow(/1 deltas but 2 weights/);
    expect(() => weightedSum([new Float32Array(2), new Float32Array(3)], [1, 2])).toThrow(/differ in size/);
  });
});
