import { describe, expect, it } from "vitest";
import { bake, BakeError, type BakeOptions } from "./bake.js";
import { dareDrop, trimTopK } from "./dense-merges.js";
import { composeMix, MixError } from "../compose/index.js";
import { deltaWeight } from "../lora/delta.js";
import type { LoraAdapter, MixTerm } from "../lora/types.js";
import { createRng, deriveSeed, randomLoraAdapter, type RandomModuleSpec } from "../random/index.js";
import { frobeniusSquared, relativeError, svdThin } from "../linalg/index.js";

const spec = (module: string, rank: number, inFeatures: number, outFeatures: number, scale = 1): RandomModuleSpec => ({ module, rank, inFeatures, outFeatures, scale });

function adapters(seed: number): Record<"a" | "b" | "c", LoraAdapter> {
  const rng = createRng(seed);
  return {
    a: randomLoraAdapter(rng, [spec("q", 3, 14, 12, 2), spec("v", 2, 14, 10, 0.5)], { baseModel: "tiny" }),
    b: randomLoraAdapter(rng, [spec("q", 5, 14, 12, 0.25), spec("o", 4, 6, 5, 1.5)], { baseModel: "tiny" }), // o: R can exceed a side
    c: randomLoraAdapter(rng, [spec("q", 1, 14, 12, 4), spec("v", 6, 14, 10, 1), spec("o", 3, 6, 5, 1)], { baseModel: "tiny" }),
  };
}

/** Dense ΔW [out, in] per module of the exact linear mix (float64 sum of deltaWeight). */
function linearDeltas(terms: readonly MixTerm[]): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const { adapter, weight } of terms) {
    if (weight === 0) continue;
    for (const [name, m] of adapter.modules) {
      const d = deltaWeight(m);
      let acc = out.get(name);
      if (!acc) out.set(name, (acc = new Float64Array(d.length)));
      for (let j = 0; j < d.length; j++) acc[j] += weight * d[j];
    }
  }
  return out;
}

function bakedDeltas(adapter: LoraAdapter): Map<string, Float32Array> {
  return new Map([...adapter.modules].map(([n, m]) => [n, deltaWeight(m)]));
}

function expectDeltas(adapter: LoraAdapter, ref: Map<string, ArrayLike<number>>, tol: number): void {
  const got = bakedDeltas(adapter);
  expect([...got.keys()].sort()).toEqual([...ref.keys()].sort());
  for (const [name, d] of got) expect(relativeError(d, ref.get(name)!), name).toBeLessThanOrEqual(tol);
}

/** Best rank-r approximation of a dense [m, n] matrix and its discarded energy ratio. */
function bestRank(mat: ArrayLike<number>, m: number, n: number, r: number): { approx: Float64Array; discarded: number } {
  const d = svdThin(Float64Array.from(mat), m, n);
  const p = Math.min(m, n);
  const approx = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < r; k++) s += d.u[i * p + k] * d.s[k] * d.v[j * p + k];
    approx[i * n + j] = s;
  }
  let dropped = 0;
  for (let k = r; k < p; k++) dropped += d.s[k] ** 2;
  const total = frobeniusSquared(d.s);
  return { approx, discarded: total > 0 ? dropped / total : 0 };
}

describe("bake: linear and svd (low-rank path)", () => {
  const x = adapters(1);
  const terms: MixTerm[] = [{ adapter: x.a, weight: 0.8 }, { adapter: x.b, weight: -1.5 }, { adapter: x.c, weight: 2 }, { adapter: x.a, weight: 0 }];

  it("linear at its default rank Σrᵢ reproduces the mix, scale 1, nothing discarded", () => {
    const { adapter, report } = bake(terms, { strategy: "linear" });
    expectDeltas(adapter, linearDeltas(terms), 1e-5);
    const mix = composeMix(terms);
    for (const [name, m] of adapter.modules) {
      expect(m.scale).toBe(1);
      expect(m.rank).toBe(Math.min(mix.modules.get(name)!.rank, m.inFeatures, m.outFeatures));
      expect(m.a.length).toBe(m.rank * m.inFeatures);
      expect(m.b.length).toBe(m.outFeatures * m.rank);
    }
    for (const p of report.perModule) expect(p.discardedEnergy).toBeLessThan(1e-12);
    expect(report.totalDiscardedEnergy).toBeLessThan(1e-12);
    expect(adapter.baseModel).toBe("tiny");
  });

  it("svd at full rank (rank = R) reproduces the linear mix", () => {
    const { adapter } = bake(terms, { strategy: "svd", rank: 64 });
    expectDeltas(adapter, linearDeltas(terms), 1e-5);
  });

  it("svd truncation is the best rank-r approximation and reports its discarded energy exactly", () => {
    const ref = linearDeltas(terms);
    const { adapter, report } = bake(terms, { strategy: "svd", rank: 2 });
    let dropped = 0;
    let total = 0;
    for (const p of report.perModule) {
      const m = adapter.modules.get(p.module)!;
      expect(p.rank).toBe(2);
      const best = bestRank(ref.get(p.module)!, m.outFeatures, m.inFeatures, 2);
      expect(relativeError(deltaWeight(m), best.approx)).toBeLessThan(1e-5);
      expect(p.discardedEnergy).toBeCloseTo(best.discarded, 6);
      const e = frobeniusSquared(ref.get(p.module)!);
      dropped += best.discarded * e;
      total += e;
    }
    expect(report.totalDiscardedEnergy).toBeCloseTo(dropped / total, 6);
    // default svd rank = max rᵢ
    const byDefault = bake(terms, { strategy: "svd" });
    expect(byDefault.report.perModule.map((p) => [p.module, p.rank])).toEqual([["q", 5], ["v", 6], ["o", 4]]);
  });

  it("a 4096×4096 target with R = 64 bakes from its factors (spot-checked entries)", () => {
    const rng = createRng(2);
    const big = [0, 1, 2, 3].map(() => randomLoraAdapter(rng, [spec("big", 16, 4096, 4096, 0.5)]));
    const bigTerms = big.map((adapter, i) => ({ adapter, weight: [1, -0.5, 0.25, 2][i] }));
    const { adapter, report } = bake(bigTerms, { strategy: "linear" });
    const m = adapter.modules.get("big")!;
    expect(m.rank).toBe(64);
    expect(report.totalDiscardedEnergy).toBeLessThan(1e-12);
    const probe = createRng(3);
    for (let t = 0; t < 200; t++) {
      const o = Math.floor(probe.nextFloat() * 4096);
      const i = Math.floor(probe.nextFloat() * 4096);
      let ref = 0;
      for (const { adapter: ad, weight } of bigTerms) {
        const src = ad.modules.get("big")!;
        for (let k = 0; k < 16; k++) ref += weight * src.scale * src.b[o * 16 + k] * src.a[k * 4096 + i];
      }
      let got = 0;
      for (let k = 0; k < 64; k++) got += m.b[o * 64 + k] * m.a[k * 4096 + i];
      expect(Math.abs(got - ref)).toBeLessThan(2e-5 * Math.max(1, Math.abs(ref)));
    }
  });
});

describe("bake: dense strategies vs naive references (full rank ⇒ exact SVD)", () => {
  const x = adapters(4);
  const terms: MixTerm[] = [{ adapter: x.a, weight: 1.2 }, { adapter: x.b, weight: -0.7 }, { adapter: x.c, weight: 0.9 }];
  const full = 64; // capped to min(out, in) per module

  /** Unweighted per-term deltas of a module, in term order, with their term indices. */
  const deltasOf = (name: string) =>
    terms.flatMap((t, i) => (t.adapter.modules.has(name) ? [{ i, w: t.weight, d: deltaWeight(t.adapter.modules.get(name)!) }] : []));

  function naiveTies(items: Array<{ w: number; d: Float32Array }>, n: number): Float64Array {
    const y = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const t = items.map(({ w, d }) => w * d[j]);
      const sigma = Math.sign(t.reduce((s, v) => s + v, 0));
      const agree = t.filter((v) => sigma !== 0 && Math.sign(v) === sigma);
      y[j] = agree.length ? agree.reduce((s, v) => s + v, 0) / agree.length : 0;
    }
    return y;
  }

  it("ties", () => {
    const { adapter, report } = bake(terms, { strategy: "ties", density: 0.3, rank: full });
    const ref = new Map([...adapter.modules.keys()].map((name) => {
      const items = deltasOf(name).map(({ w, d }) => ({ w, d: trimTopK(d, 0.3) }));
      return [name, naiveTies(items, items[0].d.length)] as const;
    }));
    expectDeltas(adapter, ref, 1e-5);
    for (const p of report.perModule) expect(p.discardedEnergy).toBeLessThan(1e-10);
  });

  it("dare_linear and dare_ties (same RNG streams: seed, module, term index)", () => {
    const seed = 99;
    const dropped = (name: string) =>
      deltasOf(name).map(({ i, w, d }) => ({ w, d: dareDrop(d, 0.6, createRng(deriveSeed(seed, name, i))) }));
    const lin = bake(terms, { strategy: "dare_linear", density: 0.6, seed, rank: full });
    expectDeltas(lin.adapter, new Map([...lin.adapter.modules.keys()].map((name) => {
      const items = dropped(name);
      const y = new Float64Array(items[0].d.length);
      for (const { w, d } of items) for (let j = 0; j < y.length; j++) y[j] += w * d[j];
      return [name, y] as const;
    })), 1e-5);
    const tie = bake(terms, { strategy: "dare_ties", density: 0.6, seed, rank: full });
    expectDeltas(tie.adapter, new Map([...tie.adapter.modules.keys()].map((name) => {
      const items = dropped(name);
      return [name, naiveTies(items, items[0].d.length)] as const;
    })), 1e-5);
  });

  it("magnitude_prune keeps the top-k of the weighted sum", () => {
    const { adapter } = bake(terms, { strategy: "magnitude_prune", density: 0.2, rank: full });
    const lin = linearDeltas(terms);
    expectDeltas(adapter, new Map([...lin].map(([n, d]) => [n, trimTopK(Float32Array.from(d), 0.2)])), 1e-5);
  });

  it("truncates with the randomized SVD on a larger module, close to the exact best rank-r", () => {
    const rng = createRng(12);
    const big = [0, 1, 2].map(() => randomLoraAdapter(rng, [spec("w", 12, 160, 200, 1)]));
    const bigTerms = big.map((adapter, i) => ({ adapter, weight: [1, -1, 0.5][i] }));
    const { adapter, report } = bake(bigTerms, { strategy: "ties", density: 0.5, rank: 12 });
    const merged = naiveTies(big.map((a, i) => ({ w: bigTerms[i].weight, d: trimTopK(deltaWeight(a.modules.get("w")!), 0.5) })), 200 * 160);
    const best = bestRank(merged, 200, 160, 12);
    const got = report.perModule[0].discardedEnergy;
    expect(got).toBeGreaterThan(0);
    expect(got).toBeGreaterThanOrEqual(best.discarded - 1e-9); // never better than optimal
    expect(got - best.discarded).toBeLessThan(0.01 * best.discarded);
    const err2 = relativeError(deltaWeight(adapter.modules.get("w")!), merged) ** 2;
    expect(err2).toBeCloseTo(got, 4); // reported energy = actual squared error
  });
});

describe("bake identities", () => {
  const x = adapters(6);
  const terms: MixTerm[] = [{ adapter: x.a, weight: 0.5 }, { adapter: x.b, weight: -2 }, { adapter: x.c, weight: 1.25 }];

  it("DARE with density 1 ≡ linear (any seed)", () => {
    for (const seed of [0, 7]) {
      expectDeltas(bake(terms, { strategy: "dare_linear", density: 1, seed, rank: 64 }).adapter, linearDeltas(terms), 1e-5);
    }
  });

  it("TIES with density 1: one term ≡ linear; n terms with equal signs ≡ linear with weights wᵢ/n (disjoint mean)", () => {
    for (const w of [1, -0.75]) {
      const one = [{ adapter: x.b, weight: w }];
      expectDeltas(bake(one, { strategy: "ties", density: 1, rank: 64 }).adapter, linearDeltas(one), 1e-5);
    }
    // adapters whose ΔW entries are all positive: every sign agrees
    const rng = createRng(31);
    const positive = [0, 1, 2].map(() => {
      const ad = randomLoraAdapter(rng, [spec("q", 3, 9, 7, 1), spec("k", 2, 9, 4, 2)]);
      for (const m of ad.modules.values()) { m.a = m.a.map(Math.abs); m.b = m.b.map(Math.abs); }
      return ad;
    });
    const pos = positive.map((adapter, i) => ({ adapter, weight: [1, 0.5, 2][i] }));
    const ties = bake(pos, { strategy: "ties", density: 1, rank: 64 }).adapter;
    expectDeltas(ties, linearDeltas(pos.map((t) => ({ ...t, weight: t.weight / pos.length }))), 1e-5);
    expectDeltas(bake(pos, { strategy: "dare_ties", density: 1, rank: 64 }).adapter, bakedDeltas(ties), 1e-5);
  });

  it("same seed ⇒ identical DARE output; different seed ⇒ different", () => {
    const o: BakeOptions = { strategy: "dare_ties", density: 0.5, seed: 1234 };
    const first = bake(terms, o);
    const again = bake(terms, o);
    expect(again).toEqual(first);
    const other = bake(terms, { ...o, seed: 1235 });
    for (const [name, m] of other.adapter.modules) expect(m.b).not.toEqual(first.adapter.modules.get(name)!.b);
    // dare_linear too, and module order does not change a module's result
    const lin = bake(terms, { strategy: "dare_linear", density: 0.5, seed: 3 });
    expect(bake(terms, { strategy: "dare_linear", density: 0.5, seed: 3 })).toEqual(lin);
  });

  it("{a:1, a:1} ≡ {a:2} under linear", () => {
    expectDeltas(bake([{ adapter: x.c, weight: 1 }, { adapter: x.c, weight: 1 }], { strategy: "linear" }).adapter, linearDeltas([{ adapter: x.c, weight: 2 }]), 1e-5);
  });
});

describe("bake option and input validation", () => {
  const x = adapters(2);
  const terms: MixTerm[] = [{ adapter: x.a, weight: 1 }];
  const cases: Array<[unknown, RegExp]> = [
    [{ strategy: "cat" }, /unknown merge strategy "cat"; known strategies: linear, ties, dare_linear, dare_ties, magnitude_prune, svd/],
    [{ strategy: "ties" }, /strategy "ties" needs a density in \(0, 1\]/],
    [{ strategy: "ties", density: 0 }, /density must be a number in \(0, 1\], got 0/],
    [{ strategy: "dare_linear", density: 1.5 }, /density must be a number in \(0, 1\], got 1.5/],
    [{ strategy: "magnitude_prune", density: Number.NaN }, /density must be a number in \(0, 1\], got NaN/],
    [{ strategy: "linear", density: 0.5 }, /density does not apply to strategy "linear"/],
    [{ strategy: "svd", rank: 0 }, /rank must be an integer ≥ 1, got 0/],
    [{ strategy: "svd", rank: 2.5 }, /rank must be an integer ≥ 1, got 2.5/],
    [{ strategy: "ties", density: 0.5, seed: 1 }, /seed does not apply to strategy "ties"/],
    [{ strategy: "dare_ties", density: 0.5, seed: -1 }, /seed must be a non-negative safe integer, got -1/],
    [{ strategy: "linear", sparsity: 0.5 }, /unknown bake option "sparsity"/],
  ];
  it.each(cases)("%o is refused", (options, message) => {
    expect(() => bake(terms, options as BakeOptions)).toThrow(BakeError);
    expect(() => bake(terms, options as BakeOptions)).toThrow(message);
  });
  it("keeps fan_in_fan_out, keeps a common base model and drops a disputed one", () => {
    const rng = createRng(5);
    const conv1 = randomLoraAdapter(rng, [spec("c_attn", 2, 8, 24, 1)], { fanInFanOut: true, baseModel: "gpt2" });
    const conv2 = randomLoraAdapter(rng, [spec("c_attn", 3, 8, 24, 1)], { fanInFanOut: true, baseModel: "gpt2" });
    const both = bake([{ adapter: conv1, weight: 1 }, { adapter: conv2, weight: 1 }], { strategy: "linear" }).adapter;
    expect(both.fanInFanOut).toBe(true);
    expect(both.baseModel).toBe("gpt2");
    const other = { ...conv2, baseModel: "distilgpt2" };
    expect(bake([{ adapter: conv1, weight: 1 }, { adapter: other, weight: 1 }], { strategy: "linear" }).adapter.baseModel).toBeNull();
    expect(() => bake([{ adapter: conv1, weight: 1 }, { adapter: x.a, weight: 1 }], { strategy: "linear" })).toThrow(/fan_in_fan_out/);
  });
  it("refuses an empty mix and bad terms", () => {
    expect(() => bake([], { strategy: "linear" })).toThrow(/nothing to bake/);
    expect(() => bake([{ adapter: x.a, weight: 0 }], { strategy: "linear" })).toThrow(/nothing to bake/);
    expect(() => bake([{ adapter: x.a, weight: Infinity }], { strategy: "linear" })).toThrow(MixError);
  });
});
