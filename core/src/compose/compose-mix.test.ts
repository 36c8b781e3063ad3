import { describe, expect, it } from "vitest";
import { composeMix, mixAsAdapter, MixError } from "./compose-mix.js";
import { deltaWeight } from "../lora/delta.js";
import type { ComposedMix, LoraAdapter, MixTerm } from "../lora/types.js";
import { createRng, randomLoraAdapter, type RandomModuleSpec } from "../random/index.js";
import { relativeError } from "../linalg/index.js";
import { simdKernelsAvailable } from "../simd/kernels.js";

/** Naive dense reference: per module ΔW = Σ wᵢ·sᵢ·Bᵢ·Aᵢ [out, in] in float64 (weight-0 terms included: they add 0). */
function naiveMix(terms: readonly MixTerm[]): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const { adapter, weight } of terms) {
    for (const [name, m] of adapter.modules) {
      let d = out.get(name);
      if (!d) out.set(name, (d = new Float64Array(m.outFeatures * m.inFeatures)));
      for (let o = 0; o < m.outFeatures; o++)
        for (let i = 0; i < m.inFeatures; i++) {
          let s = 0;
          for (let k = 0; k < m.rank; k++) s += m.b[o * m.rank + k] * m.a[k * m.inFeatures + i];
          d[o * m.inFeatures + i] += weight * m.scale * s;
        }
    }
  }
  return out;
}

function mixDeltas(mix: ComposedMix): Map<string, Float32Array> {
  return new Map([...mix.modules].map(([name, m]) => [name, deltaWeight(m)]));
}

function expectSameDeltas(a: ComposedMix, b: ComposedMix, tol: number): void {
  const da = mixDeltas(a);
  const db = mixDeltas(b);
  expect([...da.keys()].sort()).toEqual([...db.keys()].sort());
  for (const [name, d] of da) expect(relativeError(d, db.get(name)!)).toBeLessThanOrEqual(tol);
}

const q = (rank: number, nIn = 24, nOut = 16, scale = 1): RandomModuleSpec => ({ module: "layers.0.q_proj", rank, inFeatures: nIn, outFeatures: nOut, scale });
const v = (rank: number, nIn = 24, nOut = 40, scale = 1): RandomModuleSpec => ({ module: "layers.0.v_proj", rank, inFeatures: nIn, outFeatures: nOut, scale });
const o = (rank: number, nIn = 9, nOut = 5, scale = 1): RandomModuleSpec => ({ module: "layers.1.o_proj", rank, inFeatures: nIn, outFeatures: nOut, scale });

function adapters(seed: number): Record<"a" | "b" | "c" | "d", LoraAdapter> {
  const rng = createRng(seed);
  return {
    a: randomLoraAdapter(rng, [q(4, 24, 16, 2), v(4, 24, 40, 2)]),
    b: randomLoraAdapter(rng, [q(8, 24, 16, 0.5), o(3, 9, 5, 16 / Math.sqrt(3))]), // mixed ranks, rsLoRA-style scale, partly different modules
    c: randomLoraAdapter(rng, [v(1, 24, 40, 3), o(6, 9, 5, 1)]),
    d: randomLoraAdapter(rng, [q(2, 24, 16, 1), v(16, 24, 40, 0.25), o(1, 9, 5, 8)]),
  };
}

describe("composeMix vs the naive dense Σ wᵢ·sᵢ·Bᵢ·Aᵢ", () => {
  const cases: Array<[string, (x: ReturnType<typeof adapters>) => MixTerm[]]> = [
    ["one adapter", (x) => [{ adapter: x.a, weight: 1 }]],
    ["mixed ranks and modules", (x) => [{ adapter: x.a, weight: 0.7 }, { adapter: x.b, weight: 1.3 }]],
    ["negative weights", (x) => [{ adapter: x.a, weight: -1 }, { adapter: x.c, weight: 2.5 }, { adapter: x.d, weight: -0.3 }]],
    ["same adapter twice and a zero weight", (x) => [{ adapter: x.b, weight: 0.4 }, { adapter: x.d, weight: 0 }, { adapter: x.b, weight: -1.1 }]],
    ["four adapters", (x) => [{ adapter: x.a, weight: 1 }, { adapter: x.b, weight: -2 }, { adapter: x.c, weight: 0.125 }, { adapter: x.d, weight: 3 }]],
  ];
  it.each(cases)("%s", (_label, build) => {
    for (const seed of [1, 2, 3]) {
      const terms = build(adapters(seed));
      const mix = composeMix(terms);
      const ref = naiveMix(terms.filter((t) => t.weight !== 0));
      expect([...mix.modules.keys()].sort()).toEqual([...ref.keys()].sort());
      let maxRank = 0;
      for (const [name, m] of mix.modules) {
        // R = Σ rᵢ over the non-zero terms touching the module
        const R = terms.reduce((s, t) => s + (t.weight !== 0 ? (t.adapter.modules.get(name)?.rank ?? 0) : 0), 0);
        expect(m.rank).toBe(R);
        expect(m.at.length).toBe(m.inFeatures * R);
        expect(m.bt.length).toBe(R * m.outFeatures);
        maxRank = Math.max(maxRank, R);
        // cat mix ≡ Σ of individual ΔW, rel err ≤ 1e-5 in fp32
        expect(relativeError(deltaWeight(m), ref.get(name)!)).toBeLessThanOrEqual(1e-5);
      }
      expect(mix.maxRank).toBe(maxRank);
    }
  });

  it("lays out at = A′ᵀ [in, R] and bt = B′ᵀ [R, out] block by block in term order", () => {
    const x = adapters(9);
    const mix = composeMix([{ adapter: x.a, weight: -0.5 }, { adapter: x.d, weight: 3 }]);
    const m = mix.modules.get("layers.0.q_proj")!;
    const parts = [
      { src: x.a.modules.get("layers.0.q_proj")!, w: -0.5 },
      { src: x.d.modules.get("layers.0.q_proj")!, w: 3 },
    ];
    let off = 0;
    for (const { src, w } of parts) {
      for (let k = 0; k < src.rank; k++) {
        for (let i = 0; i < src.inFeatures; i++) expect(m.at[i * m.rank + off + k]).toBe(Math.fround(w * src.scale * src.a[k * src.inFeatures + i]));
        for (let oo = 0; oo < src.outFeatures; oo++) expect(m.bt[(off + k) * m.outFeatures + oo]).toBe(src.b[oo * src.rank + k]);
      }
      off += src.rank;
    }
    expect(off).toBe(m.rank);
  });

  it("equals the sum of individual ΔW computed by deltaWeight on each adapter", () => {
    const x = adapters(5);
    const terms = [{ adapter: x.a, weight: 1.5 }, { adapter: x.b, weight: -0.75 }, { adapter: x.d, weight: 0.2 }];
    const mix = composeMix(terms);
    for (const [name, m] of mix.modules) {
      const sum = new Float64Array(m.outFeatures * m.inFeatures);
      for (const t of terms) {
        const mod = t.adapter.modules.get(name);
        if (!mod) continue;
        const d = deltaWeight(mod);
        for (let j = 0; j < d.length; j++) sum[j] += t.weight * d[j];
      }
      expect(relativeError(deltaWeight(m), sum)).toBeLessThanOrEqual(1e-5);
    }
  });
});

describe("composeMix: the SIMD transposes equal the JS loops bit for bit", () => {
  it("every rank 1…9 and sizes off the 4×4 blocks (tails in rows and columns), several terms, weights not representable in float32, a repeated term, modules some terms lack", () => {
    expect(simdKernelsAvailable()).toBe(true); // else both sides are the JS loops
    const rng = createRng(77);
    for (let rank = 1; rank <= 9; rank++) {
      for (const [nIn, nOut] of [[4, 4], [7, 13], [24, 40], [33, 6], [1, 5]] as const) {
        const first = randomLoraAdapter(rng, [q(rank, nIn, nOut, 0.37), o(rank + 2, 9, 5, 1 / 3)]);
        const second = randomLoraAdapter(rng, [q(1 + ((rank * 5) % 7), nIn, nOut, 2)]);
        const terms: MixTerm[] = [
          { adapter: first, weight: 0.1 * 1.7 },
          { adapter: second, weight: -2.5 },
          { adapter: first, weight: 1 / 3 },
        ];
        const reference = composeMix(terms, { simd: false });
        const fast = composeMix(terms);
        expect([...fast.modules.keys()]).toEqual([...reference.modules.keys()]);
        expect(fast.maxRank).toBe(reference.maxRank);
        for (const [name, m] of reference.modules) {
          const f = fast.modules.get(name)!;
          expect({ rank: f.rank, inFeatures: f.inFeatures, outFeatures: f.outFeatures }).toEqual({ rank: m.rank, inFeatures: m.inFeatures, outFeatures: m.outFeatures });
          for (const k of ["at", "bt"] as const) {
            expect(Array.from(new Uint32Array(f[k].buffer, f[k].byteOffset, f[k].length)), `rank ${rank}, ${nIn}×${nOut}, ${name}.${k}`).toEqual(Array.from(new Uint32Array(m[k].buffer, m[k].byteOffset, m[k].length)));
          }
        }
      }
    }
  });
});

describe("composeMix with a bound verified as it composes (options.bound)", () => {
  it("marks the mix verifiedBound only when every value is within it, on the SIMD path; the arrays equal those composed without it", () => {
    const x = adapters(11);
    const terms: MixTerm[] = [
      { adapter: x.a, weight: 0.7 },
      { adapter: x.d, weight: -1.3 },
    ];
    const plain = composeMix(terms);
    const within = composeMix(terms, { bound: 1e15 });
    expect(within.verifiedBound).toBe(1e15);
    expect(plain.verifiedBound).toBeUndefined();
    for (const [name, m] of plain.modules) {
      expect(Array.from(within.modules.get(name)!.at)).toEqual(Array.from(m.at));
      expect(Array.from(within.modules.get(name)!.bt)).toEqual(Array.from(m.bt));
    }
    // A weight that takes one factor past the bound (in the vector body or the tail: every module is checked).
    expect(composeMix([{ adapter: x.a, weight: 1e30 }], { bound: 1e15 }).verifiedBound).toBeUndefined();
    const maxAbs = Math.max(...[...plain.modules.values()].flatMap((m) => [...m.at, ...m.bt].map(Math.abs)));
    expect(composeMix(terms, { bound: maxAbs }).verifiedBound).toBe(maxAbs); // at the bound passes
    expect(composeMix(terms, { bound: maxAbs * (1 - 1e-6) }).verifiedBound).toBeUndefined(); // just below it fails
    // The JS loops do not verify: the caller scans.
    expect(composeMix(terms, { bound: 1e15, simd: false }).verifiedBound).toBeUndefined();
  });
});

describe("composeMix into reused buffers (options.alloc)", () => {
  it("equals composing into fresh arrays, bit for bit, whatever the buffers held before", () => {
    const x = adapters(7);
    const terms: MixTerm[] = [{ adapter: x.a, weight: 0.7 }, { adapter: x.d, weight: 0 }, { adapter: x.b, weight: -1.3 }, { adapter: x.c, weight: 2 }];
    const fresh = composeMix(terms);
    const handedOut: Float32Array[] = [];
    const reused = composeMix(terms, {
      alloc: (length) => {
        const dirty = new Float32Array(length).fill(Number.NaN); // a previous mix's leftovers
        handedOut.push(dirty);
        return dirty;
      },
    });
    expect([...reused.modules.keys()]).toEqual([...fresh.modules.keys()]);
    expect(reused.maxRank).toBe(fresh.maxRank);
    for (const [name, m] of fresh.modules) {
      const r = reused.modules.get(name)!;
      expect(r).toMatchObject({ rank: m.rank, inFeatures: m.inFeatures, outFeatures: m.outFeatures });
      expect(Buffer.from(r.at.buffer).equals(Buffer.from(m.at.buffer))).toBe(true);
      expect(Buffer.from(r.bt.buffer).equals(Buffer.from(m.bt.buffer))).toBe(true);
    }
    // Every output array came from alloc: nothing of the mix lives in memory the pool does not own.
    expect(handedOut.length).toBe(2 * fresh.modules.size);
    for (const m of reused.modules.values()) expect(handedOut.includes(m.at) && handedOut.includes(m.bt)).toBe(true);
  });

  it("refuses an alloc that returns the wrong length", () => {
    const x = adapters(8);
    expect(() => composeMix([{ adapter: x.a, weight: 1 }], { alloc: (length) => new Float32Array(length + 1) })).toThrow(/alloc\(\d+\) returned \d+ floats/);
  });
});

describe("composeMix identities", () => {
  const x = adapters(77);

  it("{a:0} ≡ nothing; an empty mix is empty; {a:0, b:1} ≡ {b:1}", () => {
    expect(composeMix([{ adapter: x.a, weight: 0 }])).toEqual({ modules: new Map(), maxRank: 0 });
    expect(composeMix([])).toEqual({ modules: new Map(), maxRank: 0 });
    expect(composeMix([{ adapter: x.a, weight: 0 }, { adapter: x.b, weight: 1 }])).toEqual(composeMix([{ adapter: x.b, weight: 1 }]));
  });

  it("{a:1, a:1} ≡ {a:2}", () => {
    const twice = composeMix([{ adapter: x.d, weight: 1 }, { adapter: x.d, weight: 1 }]);
    const double = composeMix([{ adapter: x.d, weight: 2 }]);
    expect(twice.maxRank).toBe(2 * double.maxRank);
    expectSameDeltas(twice, double, 1e-6);
  });

  it("{a:1, b:1} ≡ cat(a, b) uploaded as one adapter (mixAsAdapter)", () => {
    const ab = composeMix([{ adapter: x.a, weight: 1 }, { adapter: x.b, weight: 1 }]);
    const cat = mixAsAdapter(ab, { baseModel: "tiny", fanInFanOut: false });
    expect(cat.baseModel).toBe("tiny");
    for (const m of cat.modules.values()) expect(m.scale).toBe(1);
    const again = composeMix([{ adapter: cat, weight: 1 }]);
    expect(again).toEqual(ab); // bit-exact: scale 1, weight 1
    // and a weighted mix of the cat adapter scales the whole ΔW
    expectSameDeltas(composeMix([{ adapter: cat, weight: -0.5 }]), composeMix([{ adapter: x.a, weight: -0.5 }, { adapter: x.b, weight: -0.5 }]), 1e-6);
  });

  it("{a:0.5} ≡ a with B halved", () => {
    const halfB: LoraAdapter = {
      ...x.b,
      modules: new Map([...x.b.modules].map(([n, m]) => [n, { ...m, b: m.b.map((y) => y / 2) }])),
    };
    expectSameDeltas(composeMix([{ adapter: x.b, weight: 0.5 }]), composeMix([{ adapter: halfB, weight: 1 }]), 1e-6);
  });

  it("{a:1, a:−1} has ΔW = 0 (task negation cancels)", () => {
    const mix = composeMix([{ adapter: x.c, weight: 1 }, { adapter: x.c, weight: -1 }]);
    for (const m of mix.modules.values()) for (const y of deltaWeight(m)) expect(Math.abs(y)).toBeLessThan(1e-6);
  });
});

describe("composeMix errors", () => {
  const x = adapters(3);
  it("rejects a non-finite weight", () => {
    expect(() => composeMix([{ adapter: x.a, weight: Number.NaN }])).toThrow(MixError);
    expect(() => composeMix([{ adapter: x.a, weight: 1 }, { adapter: x.b, weight: Infinity }])).toThrow(/term 1: weight must be a finite number, got Infinity/);
  });

  it("rejects adapters that disagree on a module's in/out sizes", () => {
    const other = randomLoraAdapter(createRng(1), [q(4, 24, 17)]);
    expect(() => composeMix([{ adapter: x.a, weight: 1 }, { adapter: other, weight: 1 }])).toThrow(/term 1, module layers\.0\.q_proj: shape in 24 × out 17 does not match in 24 × out 16/);
    const wide = randomLoraAdapter(createRng(1), [q(4, 25, 16)]);
    expect(() => composeMix([{ adapter: x.a, weight: 1 }, { adapter: wide, weight: 1 }])).toThrow(/in 25 × out 16 does not match/);
  });

  it("rejects adapters that disagree on fan_in_fan_out", () => {
    const conv = randomLoraAdapter(createRng(1), [q(4)], { fanInFanOut: true });
    expect(() => composeMix([{ adapter: x.a, weight: 1 }, { adapter: conv, weight: 1 }])).toThrow(/fan_in_fan_out/);
  });

  it("rejects modules whose arrays do not match their shape, a non-finite scale, a mis-keyed module", () => {
    const bad = (patch: object): LoraAdapter => ({
      ...x.a,
      modules: new Map([["layers.0.q_proj", { ...x.a.modules.get("layers.0.q_proj")!, ...patch }]]),
    });
    expect(() => composeMix([{ adapter: bad({ a: new Float32Array(3) }), weight: 1 }])).toThrow(/lora_A has 3 elements, expected rank 4 × in 24/);
    expect(() => composeMix([{ adapter: bad({ b: new Float32Array(3) }), weight: 1 }])).toThrow(/lora_B has 3 elements, expected out 16 × rank 4/);
    expect(() => composeMix([{ adapter: bad({ scale: Infinity }), weight: 1 }])).toThrow(/scale must be finite/);
    expect(() => composeMix([{ adapter: bad({ module: "x" }), weight: 1 }])).toThrow(/keyed as "layers\.0\.q_proj" but names itself "x"/);
  });
});
