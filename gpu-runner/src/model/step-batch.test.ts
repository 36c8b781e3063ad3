import { describe, expect, it } from "vitest";
import type { ComposedMix } from "#core/lora/types";
import type { GraphSpec } from "./graph-spec.js";
import { KvStore, RowKvCache } from "./kv-cache.js";
import { planLoraPaths } from "./lora-paths.js";
import { MASKED, packLora, packPast, packTokens, padsZeroWidth, unpackPresent } from "./step-batch.js";
import { randomMix, seededRandom } from "./testing/random-mix.js";

const spec: GraphSpec = {
  format: 1,
  graphFile: "m.onnx",
  weightsFile: "w.bin",
  inputIds: { name: "ids", type: "int64" },
  positionIds: { name: "pos", type: "int64" },
  mask: { kind: "bias", name: "bias" },
  logitsPositions: "picks",
  logits: "logits",
  kv: { layout: "separate", pastKey: "pk{i}", pastValue: "pv{i}", presentKey: "k{i}", presentValue: "v{i}", layers: 1, heads: 1, headDim: 1 },
  targets: [{ module: "m", weight: "m.w", layout: "in_out", at: "m.at", bt: "m.bt", ac: "m.ac", bc: "m.bc", mask: "m.mk" }],
};
const owner = {};
/** A 1-layer, 1-head, headDim-1 cache holding `values` as keys and their negatives as values. */
const cache = (values: number[]) => {
  const store = KvStore.create(1, 1, 1, 4);
  store.keys[0].set(values);
  store.values[0].set(values.map((v) => -v));
  store.used = values.length;
  return new RowKvCache(owner, values.length, store);
};

/** Two targets of different sizes ("m" 5→3, "n" 4→6), their dims and a spec with both LoRA paths on each. */
function twoModules() {
  const targets = [
    { module: "m", in: 5, out: 3 },
    { module: "n", in: 4, out: 6 },
  ];
  const dims = new Map(targets.map((t) => [t.module, { in: t.in, out: t.out }]));
  const twoSpec: GraphSpec = { ...spec, targets: targets.map((t) => ({ module: t.module, weight: `${t.module}.w`, layout: "in_out" as const, at: `${t.module}.at`, bt: `${t.module}.bt`, ac: `${t.module}.ac`, bc: `${t.module}.bc`, mask: `${t.module}.mk` })) };
  return { targets, dims, twoSpec };
}

describe("step batch packing", () => {
  it("lays out ids, positions, the causal+padding mask and logit picks per row", () => {
    // Row 0: 2 cached + 1 new; row 1: no cache, 3 new. P = 2, S = 3, T = 5.
    const rows = [
      { tokens: [7], cache: cache([1, 2]), mix: null },
      { tokens: [4, 5, 6], cache: null, mix: null },
    ];
    const { feeds, shape } = packTokens(spec, rows, false);
    expect(shape).toEqual({ batch: 2, seq: 3, past: 2, nLogits: 1 });
    expect(Array.from(feeds.ids.data as BigInt64Array, Number)).toEqual([7, 0, 0, 4, 5, 6]);
    expect(Array.from(feeds.pos.data as BigInt64Array, Number)).toEqual([2, 2, 2, 0, 1, 2]);
    expect(Array.from(feeds.picks.data as BigInt64Array, Number)).toEqual([0, 2]);
    const bias = Array.from(feeds.bias.data as Float32Array, (v) => (v === 0 ? 1 : v === MASKED ? 0 : NaN));
    expect(bias).toEqual([
      // row 0: keys [c0 c1 | new0 pad pad]; padding queries copy the last real query
      1, 1, 1, 0, 0,
      1, 1, 1, 0, 0,
      1, 1, 1, 0, 0,
      // row 1: no cache, slots 0–1 are padding
      0, 0, 1, 0, 0,
      0, 0, 1, 1, 0,
      0, 0, 1, 1, 1,
    ]);
    const past = packPast(spec, rows, shape);
    expect(Array.from(past.pk0.data as Float32Array)).toEqual([1, 2, 0, 0]);
    expect(Array.from(past.pv0.data as Float32Array)).toEqual([-1, -2, 0, 0]);
    // present [2, 1, 5, 1]: the row's cache + its new entries, padding dropped.
    const present = { k0: { type: "float32" as const, data: Float32Array.from([1, 2, 70, 0, 0, 0, 0, 40, 50, 60]), dims: [2, 1, 5, 1] } };
    const out = unpackPresent(owner, spec, rows, shape, { ...present, v0: present.k0 });
    expect(out.map((c) => [c.length, Array.from(c.layerKeys(0))])).toEqual([
      [3, [1, 2, 70]],
      [3, [40, 50, 60]],
    ]);
    // Row 0 appended in place (it was the newest cache of its store); the old cache still reads its 2 entries.
    expect(out[0].store).toBe(rows[0].cache!.store);
    expect(Array.from(rows[0].cache!.layerKeys(0))).toEqual([1, 2]);
    // Stepping the old cache again (a fork) copies instead of overwriting the newer one.
    const fork = unpackPresent(owner, spec, [rows[0]], { batch: 1, seq: 1, past: 2, nLogits: 1 }, { k0: { type: "float32", data: Float32Array.from([1, 2, 99]), dims: [1, 1, 3, 1] }, v0: { type: "float32", data: Float32Array.from([-1, -2, -99]), dims: [1, 1, 3, 1] } });
    expect(fork[0].store).not.toBe(out[0].store);
    expect(Array.from(fork[0].layerKeys(0))).toEqual([1, 2, 99]);
    expect(Array.from(fork[0].layerValues(0))).toEqual([-1, -2, -99]);
    expect(Array.from(out[0].layerKeys(0))).toEqual([1, 2, 70]);
  });

  it("zero-pads each row's Aᵗ/Bᵗ to the batch's largest rank; R = 0 when no row has the module", () => {
    const mix = (rank: number, at: number[], bt: number[]): ComposedMix => ({ modules: new Map([["m", { module: "m", rank, inFeatures: 2, outFeatures: 1, at: Float32Array.from(at), bt: Float32Array.from(bt) }]]), maxRank: rank });
    const rows = [
      { tokens: [1], cache: null, mix: mix(1, [1, 2], [3]) },
      { tokens: [1], cache: null, mix: null },
      { tokens: [1], cache: null, mix: mix(2, [4, 5, 6, 7], [8, 9]) },
    ];
    const dims = new Map([["m", { in: 2, out: 1 }]]);
    const feeds = packLora(spec, rows, dims, [false, false, false]);
    expect(feeds["m.at"].dims).toEqual([3, 2, 2]);
    expect(Array.from(feeds["m.at"].data as Float32Array)).toEqual([1, 0, 2, 0, 0, 0, 0, 0, 4, 5, 6, 7]);
    expect(Array.from(feeds["m.bt"].data as Float32Array)).toEqual([3, 0, 0, 0, 8, 9]);
    // Nothing shared: Rc = 0.
    expect(feeds["m.ac"].dims).toEqual([2, 0]);
    expect(feeds["m.bc"].dims).toEqual([0, 1]);
    expect(feeds["m.mk"].dims).toEqual([3, 1, 0]);
    const none = packLora(spec, [rows[1]], dims);
    expect(none["m.at"].dims).toEqual([1, 2, 0]);
    expect(none["m.bt"].dims).toEqual([1, 0, 1]);
    expect(none["m.ac"].dims).toEqual([2, 0]);
    expect(none["m.mk"].dims).toEqual([1, 1, 0]);
  });

  it("minWidth 1 (EPs refusing zero-size tensors): one zero column where a path would be R = 0 or Rc = 0, nothing else changes", () => {
    expect(padsZeroWidth(undefined)).toBe(false);
    expect(padsZeroWidth("cpu")).toBe(false);
    expect(padsZeroWidth("webgpu")).toBe(true);
    const mix: ComposedMix = { modules: new Map([["m", { module: "m", rank: 2, inFeatures: 2, outFeatures: 1, at: Float32Array.from([4, 5, 6, 7]), bt: Float32Array.from([8, 9]) }]]), maxRank: 2 };
    const dims = new Map([["m", { in: 2, out: 1 }]]);
    const base = { tokens: [1], cache: null, mix: null };
    const none = packLora(spec, [base, base], dims, undefined, undefined, { minWidth: 1 });
    expect(none["m.at"].dims).toEqual([2, 2, 1]);
    expect(none["m.bt"].dims).toEqual([2, 1, 1]);
    expect(none["m.ac"].dims).toEqual([2, 1]);
    expect(none["m.bc"].dims).toEqual([1, 1]);
    expect(none["m.mk"].dims).toEqual([2, 1, 1]);
    for (const name of ["m.at", "m.bt", "m.ac", "m.bc", "m.mk"]) expect(Array.from(none[name].data as Float32Array).every((v) => v === 0)).toBe(true);
    // Rows on both paths: widths are already ≥ 1, so the feeds are the default ones.
    const rows = [{ tokens: [1], cache: null, mix }, { tokens: [1], cache: null, mix }, { tokens: [1], cache: null, mix: null }];
    const padded = packLora(spec, rows, dims, [true, false, false], undefined, { minWidth: 1 });
    const plain = packLora(spec, rows, dims, [true, false, false]);
    for (const name of Object.keys(plain)) {
      expect(padded[name].dims).toEqual(plain[name].dims);
      expect(Array.from(padded[name].data as Float32Array)).toEqual(Array.from(plain[name].data as Float32Array));
    }
  });

  it("no row on the shared path (the fast path): every module's shared feeds equal the general path's for a module no shared row touches", () => {
    const { targets, dims, twoSpec } = twoModules();
    const both = randomMix(targets, (m) => (m === "m" ? 3 : 2), 1);
    const onlyN = randomMix(targets, (m) => (m === "n" ? 4 : 0), 2);
    const onlyM = randomMix(targets, (m) => (m === "m" ? 2 : 0), 3);
    const rows = [
      { tokens: [1], cache: null, mix: both },
      { tokens: [1], cache: null, mix: onlyN },
      { tokens: [1], cache: null, mix: onlyM },
      { tokens: [1], cache: null, mix: null },
    ];
    /** Per module, a row whose mix does not touch it: shared alone, the general path runs and feeds that module no shared column. */
    const untouchedBy: Record<string, number> = { m: 1, n: 2 };
    for (const minWidth of [0, 1] as const) {
      const fast = packLora(twoSpec, rows, dims, [false, false, false, false], undefined, { minWidth });
      for (const { module } of targets) {
        const general = packLora(twoSpec, rows, dims, rows.map((_, i) => i === untouchedBy[module]), undefined, { minWidth });
        for (const name of ["at", "bt", "ac", "bc", "mk"].map((input) => `${module}.${input}`)) {
          expect(fast[name].dims, `${name}, minWidth ${minWidth}`).toEqual(general[name].dims);
          expect(Array.from(fast[name].data as Float32Array), `${name}, minWidth ${minWidth}`).toEqual(Array.from(general[name].data as Float32Array));
        }
      }
      expect(fast["n.ac"].dims).toEqual([4, minWidth]);
      expect(fast["n.mk"]).toBe(fast["m.mk"]); // one mask tensor for the step
      expect(Array.from(fast["n.ac"].data as Float32Array).every((v) => v === 0)).toBe(true);
      expect(Array.from(fast["n.bc"].data as Float32Array).every((v) => v === 0)).toBe(true);
    }
  });

  it("rank chunks: only rows with a per-row mix are fed, each in ⌈r/K⌉ chunks tagged with its row; N = 0 when none", () => {
    const chunked: GraphSpec = { ...spec, targets: [{ ...spec.targets[0]!, rows: "m.rows" }] };
    const mix = (rank: number, at: number[], bt: number[]): ComposedMix => ({ modules: new Map([["m", { module: "m", rank, inFeatures: 2, outFeatures: 1, at: Float32Array.from(at), bt: Float32Array.from(bt) }]]), maxRank: rank });
    // Ranks 3 and 1: K = 3 costs 2 chunks · (3 + 4) = 14 < K = 1: 4 · 5 = 20.
    const rows = [
      { tokens: [1], cache: null, mix: mix(3, [1, 2, 3, 4, 5, 6], [7, 8, 9]) },
      { tokens: [1], cache: null, mix: null },
      { tokens: [1], cache: null, mix: mix(1, [10, 11], [12]) },
    ];
    const dims = new Map([["m", { in: 2, out: 1 }]]);
    const feeds = packLora(chunked, rows, dims, [false, false, false]);
    expect(feeds["m.at"].dims).toEqual([2, 2, 3]);
    expect(Array.from(feeds["m.at"].data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6, 10, 0, 0, 11, 0, 0]);
    expect(Array.from(feeds["m.bt"].data as Float32Array)).toEqual([7, 8, 9, 12, 0, 0]);
    expect(Array.from(feeds["m.rows"].data as BigInt64Array, Number)).toEqual([0, 2]);
    // Many rows of rank 8 and one of rank 40: K = 8, the rank-40 row in 5 chunks.
    const wide = (rank: number, seed: number) => randomMix([{ module: "m", in: 2, out: 1 }], () => rank, seed);
    const many = [wide(40, 1), ...Array.from({ length: 6 }, (_, i) => wide(8, 2 + i))].map((m) => ({ tokens: [1], cache: null, mix: m }));
    const f2 = packLora(chunked, many, dims, many.map(() => false));
    expect(f2["m.at"].dims).toEqual([11, 2, 8]);
    expect(Array.from(f2["m.rows"].data as BigInt64Array, Number)).toEqual([0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
    const a40 = many[0]!.mix.modules.get("m")!.at; // [2, 40]; chunk 2 = columns 16..23
    expect(Array.from((f2["m.at"].data as Float32Array).subarray(2 * 16, 2 * 16 + 8))).toEqual(Array.from(a40.subarray(16, 24)));
    // Shared and base rows feed nothing here.
    const none = packLora(chunked, rows, dims, [true, false, true]);
    expect(none["m.at"].dims).toEqual([0, 2, 0]);
    expect(none["m.rows"].dims).toEqual([0]);
  });

  it("shared path: each unique mix once in Ac/Bc, a 0/1 mask per row; shared rows leave R to the others", () => {
    const mix = (rank: number, at: number[], bt: number[]): ComposedMix => ({ modules: new Map([["m", { module: "m", rank, inFeatures: 2, outFeatures: 1, at: Float32Array.from(at), bt: Float32Array.from(bt) }]]), maxRank: rank });
    const a = mix(1, [1, 2], [3]);
    const b = mix(2, [4, 5, 6, 7], [8, 9]);
    const c = mix(3, [10, 11, 12, 13, 14, 15], [16, 17, 18]);
    const rows = [
      { tokens: [1, 2], cache: null, mix: b },
      { tokens: [1], cache: null, mix: a },
      { tokens: [1], cache: null, mix: b },
      { tokens: [1], cache: null, mix: c },
      { tokens: [1], cache: null, mix: null },
    ];
    const dims = new Map([["m", { in: 2, out: 1 }]]);
    // Prefill (row 0 has 2 tokens): only b (2 rows) is shared; a and c stay per-row, R = 3 (c), not 2.
    const feeds = packLora(spec, rows, dims);
    expect(feeds["m.at"].dims).toEqual([5, 2, 3]);
    expect(Array.from(feeds["m.at"].data as Float32Array)).toEqual([0, 0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 10, 11, 12, 13, 14, 15, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(feeds["m.bt"].data as Float32Array)).toEqual([0, 0, 0, 3, 0, 0, 0, 0, 0, 16, 17, 18, 0, 0, 0]);
    expect(feeds["m.ac"].dims).toEqual([2, 2]);
    expect(Array.from(feeds["m.ac"].data as Float32Array)).toEqual([4, 5, 6, 7]);
    expect(Array.from(feeds["m.bc"].data as Float32Array)).toEqual([8, 9]);
    // One unique shared mix: Ac/Bc are its own arrays (no copy).
    expect(feeds["m.ac"].data).toBe(b.modules.get("m")!.at);
    expect(feeds["m.bc"].data).toBe(b.modules.get("m")!.bt);
    expect(feeds["m.mk"].dims).toEqual([5, 1, 2]);
    expect(Array.from(feeds["m.mk"].data as Float32Array)).toEqual([1, 1, 0, 0, 1, 1, 0, 0, 0, 0]);
    // Every mixed row shared: R = 0, unique mixes in first-appearance order b, a, c.
    const all = packLora(spec, rows, dims, [true, true, true, true, false]);
    expect(all["m.at"].dims).toEqual([5, 2, 0]);
    expect(all["m.bt"].dims).toEqual([5, 0, 1]);
    expect(Array.from(all["m.ac"].data as Float32Array)).toEqual([4, 5, 1, 10, 11, 12, 6, 7, 2, 13, 14, 15]);
    expect(Array.from(all["m.bc"].data as Float32Array)).toEqual([8, 9, 3, 16, 17, 18]);
    expect(Array.from(all["m.mk"].data as Float32Array)).toEqual([
      1, 1, 0, 0, 0, 0,
      0, 0, 1, 0, 0, 0,
      1, 1, 0, 0, 0, 0,
      0, 0, 0, 1, 1, 1,
      0, 0, 0, 0, 0, 0,
    ]);
    // A graph without shared inputs (older graph.json): every row on the per-row path.
    const legacy: GraphSpec = { ...spec, targets: [{ module: "m", weight: "m.w", layout: "in_out", at: "m.at", bt: "m.bt" }] };
    const old = packLora(legacy, rows, dims, [true, true, true, true, false]);
    expect(Object.keys(old).sort()).toEqual(["m.at", "m.bt"]);
    expect(old["m.at"].dims).toEqual([5, 2, 3]);
  });

  it("both paths together equal (x·Aᵗᵢ)·Bᵗᵢ for every row, whatever the split, with or without minWidth (plain loops)", () => {
    const { targets, dims, twoSpec } = twoModules();
    const mixes = [1, 2, 3, 4].map((k) => randomMix(targets, (m) => (m === "n" && k === 2 ? 0 : k * 2 + (m === "n" ? 1 : 0)), k));
    const rand = seededRandom(7);
    for (let trial = 0; trial < 40; trial++) {
      const B = 1 + Math.floor(rand() * 7);
      const rows = Array.from({ length: B }, () => {
        const pick = Math.floor(rand() * (mixes.length + 1));
        return { tokens: [1], cache: null, mix: pick === mixes.length ? null : mixes[pick] };
      });
      const shared = rows.map((r) => r.mix !== null && rand() < 0.5);
      const feeds = packLora(twoSpec, rows, dims, shared, undefined, { minWidth: trial % 2 ? 1 : 0 });
      for (const t of targets) {
        const at = feeds[`${t.module}.at`];
        const bt = feeds[`${t.module}.bt`];
        const ac = feeds[`${t.module}.ac`];
        const bc = feeds[`${t.module}.bc`];
        const mk = feeds[`${t.module}.mk`];
        const [R, Rc] = [at.dims[2], ac.dims[1]];
        const x = Float32Array.from({ length: t.in }, () => rand() * 2 - 1);
        rows.forEach((row, i) => {
          for (let y = 0; y < t.out; y++) {
            let got = 0;
            for (let c = 0; c < R; c++) {
              let xa = 0;
              for (let k = 0; k < t.in; k++) xa += x[k] * (at.data as Float32Array)[(i * t.in + k) * R + c];
              got += xa * (bt.data as Float32Array)[(i * R + c) * t.out + y];
            }
            for (let c = 0; c < Rc; c++) {
              let xc = 0;
              for (let k = 0; k < t.in; k++) xc += x[k] * (ac.data as Float32Array)[k * Rc + c];
              got += xc * (mk.data as Float32Array)[i * Rc + c] * (bc.data as Float32Array)[c * t.out + y];
            }
            let want = 0;
            const m = row.mix?.modules.get(t.module);
            for (let c = 0; c < (m?.rank ?? 0); c++) {
              let xa = 0;
              for (let k = 0; k < t.in; k++) xa += x[k] * m!.at[k * m!.rank + c];
              want += xa * m!.bt[c * t.out + y];
            }
            expect(got).toBeCloseTo(want, 5);
          }
        });
      }
    }
  });
});

describe("planLoraPaths", () => {
  const mix = (maxRank: number): ComposedMix => ({ modules: new Map(), maxRank });
  it("shares mixes used by ≥ 2 rows; a decode step with a repeated mix goes all-shared while Σ unique ranks ≤ ratio · max rank", () => {
    const [a, b, c] = [mix(8), mix(16), mix(32)];
    // Prefill: only the repeated mix.
    expect(planLoraPaths([a, b, a, null, c], false)).toEqual([true, false, true, false, false]);
    // Decode under the bound (8 + 16 + 32 = 56 ≤ 2 · 32): everything with a mix.
    expect(planLoraPaths([a, b, a, null, c], true, 2)).toEqual([true, true, true, false, true]);
    // Decode over the bound (56 > 1.5 · 32): as prefill.
    expect(planLoraPaths([a, b, a, null, c], true, 1.5)).toEqual([true, false, true, false, false]);
    // Every row its own mix, prefill: per-row only; one mix everywhere: shared.
    expect(planLoraPaths([a, b, c], false)).toEqual([false, false, false]);
    // Every row its own mix, decode: per-row too, even under the bound (no mix repeated: the resident chunks win under churn).
    expect(planLoraPaths([a, b, c], true, 2)).toEqual([false, false, false]);
    expect(planLoraPaths([a, b, null, c], true, 100)).toEqual([false, false, false, false]);
    expect(planLoraPaths([b, b, b], false)).toEqual([true, true, true]);
    // A single row alone, or one mix with base rows: shared on prefill and decode (Σ = max).
    expect(planLoraPaths([c], false)).toEqual([true]);
    expect(planLoraPaths([c], true, 1)).toEqual([true]);
    expect(planLoraPaths([null, c, null], false)).toEqual([false, true, false]);
    expect(planLoraPaths([null, null], true)).toEqual([false, false]);
    expect(planLoraPaths([], true)).toEqual([]);
    // Identity, not equality: two equal-looking mixes are distinct.
    expect(planLoraPaths([mix(4), mix(4)], false)).toEqual([false, false]);
  });
});
