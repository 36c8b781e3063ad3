import { describe, expect, it } from "vitest";
import { createRng, createRngFromState, deriveSeed } from "./xoshiro128.js";

function take(n: number, next: () => number): number[] {
  return Array.from({ length: n }, () => next());
}

describe("xoshiro128**", () => {
  it("matches the reference C implementation (prng.di.unimi.it) for raw states", () => {
    // Output of the reference xoshiro128plusplus.c/xoshiro128starstar.c next() compiled with gcc.
    const r1 = createRngFromState(1, 2, 3, 4);
    expect(take(8, r1.nextUint32)).toEqual([
      11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849,
    ]);
    const r2 = createRngFromState(0xdeadbeef, 0x12345678, 0xffffffff, 0x80000000);
    expect(take(8, r2.nextUint32)).toEqual([
      2576977301, 2031002624, 493879743, 1881573885, 1588474099, 315906604, 1980006008, 587966534,
    ]);
  });

  it("is reproducible for a seed and differs between seeds (including high-bit-only differences)", () => {
    const a = take(64, createRng(42).nextUint32);
    expect(take(64, createRng(42).nextUint32)).toEqual(a);
    expect(take(64, createRng(43).nextUint32)).not.toEqual(a);
    const big = 2 ** 40;
    expect(take(16, createRng(big).nextUint32)).not.toEqual(take(16, createRng(0).nextUint32));
    expect(take(16, createRng(big).nextUint32)).not.toEqual(take(16, createRng(2 * big).nextUint32));
  });

  it("pins the seeded stream (changing it would change every DARE bake)", () => {
    expect(take(4, createRng(0).nextUint32)).toMatchInlineSnapshot(`
      [
        4187458251,
        2444602982,
        3872279642,
        1301277917,
      ]
    `);
    expect(take(4, createRng(12345).nextUint32)).toMatchInlineSnapshot(`
      [
        8703704,
        2287811599,
        70923565,
        3461849438,
      ]
    `);
  });

  it("nextFloat is uniform on [0,1)", () => {
    const rng = createRng(7);
    const n = 200_000;
    let sum = 0;
    let min = 1;
    let max = 0;
    const bins = new Array<number>(10).fill(0);
    for (let i = 0; i < n; i++) {
      const x = rng.nextFloat();
      sum += x;
      min = Math.min(min, x);
      max = Math.max(max, x);
      bins[Math.floor(x * 10)]++;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.005);
    for (const b of bins) expect(Math.abs(b / n - 0.1)).toBeLessThan(0.005);
  });

  it("rejects bad seeds and the all-zero state", () => {
    expect(() => createRng(-1)).toThrow(/non-negative safe integer/);
    expect(() => createRng(1.5)).toThrow(/non-negative safe integer/);
    expect(() => createRng(Number.NaN)).toThrow(/non-negative safe integer/);
    expect(() => createRngFromState(0, 0, 0, 0)).toThrow(/all zero/);
  });
});

describe("deriveSeed", () => {
  it("is deterministic, label-sensitive and separator-safe", () => {
    expect(deriveSeed(1, "q_proj", 0)).toBe(deriveSeed(1, "q_proj", 0));
    expect(deriveSeed(1, "q_proj", 0)).not.toBe(deriveSeed(1, "q_proj", 1));
    expect(deriveSeed(1, "q_proj", 0)).not.toBe(deriveSeed(2, "q_proj", 0));
    expect(deriveSeed(1, "ab", "c")).not.toBe(deriveSeed(1, "a", "bc"));
    const s = deriveSeed(2 ** 50, "x");
    expect(Number.isSafeInteger(s) && s >= 0).toBe(true);
    expect(() => createRng(s)).not.toThrow();
  });
});
