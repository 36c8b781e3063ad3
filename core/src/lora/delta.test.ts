import { describe, expect, it } from "vitest";
import { naiveDelta } from "../testing/naive-delta.js";
import { deltaWeight, mergeWeight } from "./delta.js";
import type { ComposedModule, LoraModule } from "./types.js";
import { createRng, randomUniform } from "../random/index.js";
import { relativeError } from "../linalg/index.js";

function randomModule(seed: number, rank: number, nIn: number, nOut: number, scale: number): LoraModule {
  const rng = createRng(seed);
  return { module: "m", rank, inFeatures: nIn, outFeatures: nOut, scale, a: randomUniform(rng, rank * nIn), b: randomUniform(rng, nOut * rank) };
}

const shapes: Array<[rank: number, nIn: number, nOut: number, scale: number]> = [
  [1, 1, 1, 2],
  [4, 16, 8, 0.5],
  [8, 33, 65, -1.25],
  [3, 7, 2, 1 / Math.sqrt(3)],
  [0, 5, 6, 1],
];

describe("deltaWeight", () => {
  it.each(shapes)("LoraModule rank %i, in %i, out %i, scale %f equals the naive s·B·A", (rank, nIn, nOut, scale) => {
    const m = randomModule(rank * 1000 + nIn, rank, nIn, nOut, scale);
    const ref = naiveDelta(m);
    const d = deltaWeight(m);
    expect(d.length).toBe(nOut * nIn);
    expect(relativeError(d, ref)).toBeLessThanOrEqual(1e-6);
    // fan_in_fan_out: the exact transpose, [in, out]
    const t = deltaWeight(m, { fanInFanOut: true });
    for (let o = 0; o < nOut; o++) for (let i = 0; i < nIn; i++) expect(t[i * nOut + o]).toBe(d[o * nIn + i]);
  });

  it.each(shapes)("ComposedModule rank %i, in %i, out %i equals the naive btᵀ·atᵀ", (rank, nIn, nOut) => {
    const rng = createRng(rank + 7 * nIn + 13 * nOut);
    const c: ComposedModule = { module: "m", rank, inFeatures: nIn, outFeatures: nOut, at: randomUniform(rng, nIn * rank), bt: randomUniform(rng, rank * nOut) };
    const ref = new Float64Array(nOut * nIn);
    for (let o = 0; o < nOut; o++)
      for (let i = 0; i < nIn; i++) {
        let s = 0;
        for (let k = 0; k < rank; k++) s += c.at[i * rank + k] * c.bt[k * nOut + o];
        ref[o * nIn + i] = s;
      }
    expect(relativeError(deltaWeight(c), ref)).toBeLessThanOrEqual(1e-6);
    const t = deltaWeight(c, { fanInFanOut: true });
    const d = deltaWeight(c);
    for (let o = 0; o < nOut; o++) for (let i = 0; i < nIn; i++) expect(t[i * nOut + o]).toBe(d[o * nIn + i]);
  });

  it("rejects arrays that do not match the declared shape and a non-finite scale", () => {
    const m = randomModule(1, 2, 3, 4, 1);
    expect(() => deltaWeight({ ...m, a: new Float32Array(5) })).toThrow(/a has 5 elements, expected 6/);
    expect(() => deltaWeight({ ...m, b: new Float32Array(9) })).toThrow(/b has 9 elements, expected 8/);
    expect(() => deltaWeight({ ...m, scale: Number.NaN })).toThrow(/scale must be finite/);
    expect(() => deltaWeight({ module: "c", rank: 2, inFeatures: 3, outFeatures: 4, at: new Float32Array(6), bt: new Float32Array(7) })).toThrow(/bt has 7 elements, expected 8/);
  });
});

describe("mergeWeight", () => {
  it("is the float32 elementwise sum W + ΔW", () => {
    const rng = createRng(3);
    const w = randomUniform(rng, 257, 3);
    const d = randomUniform(rng, 257, 1e-3);
    const merged = mergeWeight(w, d);
    for (let j = 0; j < w.length; j++) expect(merged[j]).toBe(Math.fround(w[j] + d[j]));
    expect(merged).not.toBe(w);
  });

  it("W + deltaWeight equals the naive merged weight for a fan_in_fan_out layer", () => {
    const m = randomModule(11, 3, 6, 5, 0.75);
    const rng = createRng(12);
    const wT = randomUniform(rng, 6 * 5); // [in, out]
    const merged = mergeWeight(wT, deltaWeight(m, { fanInFanOut: true }));
    const ref = naiveDelta(m);
    for (let i = 0; i < 6; i++) for (let o = 0; o < 5; o++) expect(merged[i * 5 + o]).toBeCloseTo(wT[i * 5 + o] + ref[o * 6 + i], 6);
  });

  it("rejects a length mismatch", () => {
    expect(() => mergeWeight(new Float32Array(4), new Float32Array(3))).toThrow(/W has 4 elements but ΔW has 3/);
  });
});
