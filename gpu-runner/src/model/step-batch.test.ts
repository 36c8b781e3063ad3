import { describe, expect, it } from "vitest";
import type { ComposedMix } from "../../../core/src/lora/types.js";
import type { GraphSpec } from "./graph-spec.js";
import { KvStore, RowKvCache } from "./kv-cache.js";
import { MASKED, packLora, packPast, packTokens, unpackPresent } from "./step-batch.js";

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
  targets: [{ module: "m", weight: "m.w", layout: "in_out", at: "m.at", bt: "m.bt" }],
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
    const feeds = packLora(spec, rows, dims);
    expect(feeds["m.at"].dims).toEqual([3, 2, 2]);
    expect(Array.from(feeds["m.at"].data as Float32Array)).toEqual([1, 0, 2, 0, 0, 0, 0, 0, 4, 5, 6, 7]);
    expect(Array.from(feeds["m.bt"].data as Float32Array)).toEqual([3, 0, 0, 0, 8, 9]);
    const none = packLora(spec, [rows[1]], dims);
    expect(none["m.at"].dims).toEqual([1, 2, 0]);
    expect(none["m.bt"].dims).toEqual([1, 0, 1]);
  });
});
