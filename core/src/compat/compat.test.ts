import { describe, expect, it } from "vitest";
import { AdapterFormatError } from "../errors.js";
import type { ModelManifest } from "../manifest/model-manifest.js";
import { modelManifestSchema } from "../manifest/model-manifest.js";
import { createRng } from "../random/xoshiro128.js";
import { randomLoraAdapter } from "../random/random-adapter.js";
import { tinyManifest } from "../testing/tiny-manifest.js";
import { assertCompatible, checkCompatibility } from "./check-compatibility.js";

const manifest: ModelManifest = modelManifestSchema.parse({
  ...tinyManifest({ id: "tiny", vocabSize: 256, contextLength: 64, parameters: 1000, maxRank: 8, targets: [] }),
  targets: [
    { module: "model.layers.0.self_attn.q_proj", in: 16, out: 16, mode: "unmerged" },
    { module: "model.layers.0.self_attn.v_proj", in: 16, out: 8, mode: "unmerged" },
    { module: "model.layers.0.mlp.up_proj", in: 16, out: 32, mode: "merge-only" },
    { module: "model.layers.1.self_attn.q_proj", in: 16, out: 16, mode: "unmerged" },
  ],
});

const rng = createRng(1);

describe("checkCompatibility", () => {
  it("accepts a matching adapter and lists merge-only targets", () => {
    const a = randomLoraAdapter(rng, [
      { module: "model.layers.0.self_attn.q_proj", rank: 8, inFeatures: 16, outFeatures: 16 },
      { module: "model.layers.0.mlp.up_proj", rank: 4, inFeatures: 16, outFeatures: 32 },
    ]);
    expect(checkCompatibility(a, manifest)).toEqual({ ok: true, errors: [], mergeOnlyTargets: ["model.layers.0.mlp.up_proj"] });
    expect(assertCompatible(a, manifest).ok).toBe(true);
  });

  it("lists every mismatch: unknown target, shapes, transposed shapes, rank, prefix hint", () => {
    const a = randomLoraAdapter(rng, [
      { module: "model.layers.0.self_attn.q_proj", rank: 9, inFeatures: 16, outFeatures: 16 }, // rank > 8
      { module: "model.layers.0.self_attn.v_proj", rank: 2, inFeatures: 8, outFeatures: 16 }, // swapped
      { module: "model.layers.1.self_attn.q_proj", rank: 2, inFeatures: 12, outFeatures: 16 }, // wrong in
      { module: "model.layers.7.self_attn.q_proj", rank: 2, inFeatures: 16, outFeatures: 16 }, // no such layer
      { module: "base_model.model.model.layers.0.mlp.up_proj", rank: 2, inFeatures: 16, outFeatures: 32 }, // prefix
    ]);
    const r = checkCompatibility(a, manifest);
    expect(r.ok).toBe(false);
    expect(r.errors).toHaveLength(5);
    expect(r.errors).toEqual([
      expect.stringMatching(/"base_model.model.model.layers.0.mlp.up_proj" is not a target of model "tiny" \(did you mean "model.layers.0.mlp.up_proj"\?/),
      'module "model.layers.0.self_attn.q_proj": rank 9 exceeds the maximum rank 8 of model "tiny"',
      expect.stringMatching(/"model.layers.0.self_attn.v_proj": adapter maps 8 → 16 features .* expects 16 → 8 \(in and out are swapped/),
      expect.stringMatching(/"model.layers.1.self_attn.q_proj": adapter maps 12 → 16 features/),
      'module "model.layers.7.self_attn.q_proj" is not a target of model "tiny"',
    ]);
    expect(checkCompatibility(a, manifest, { maxRank: 16 }).errors).toHaveLength(4);
    try {
      assertCompatible(a, manifest);
      throw new Error("unreachable");
    } catch (e) {
      expect(e).toBeInstanceOf(AdapterFormatError);
      expect((e as AdapterFormatError).code).toBe("incompatible_adapter");
      expect((e as AdapterFormatError).status).toBe(422);
      expect((e as AdapterFormatError).message).toMatch(/5 problems/);
    }
  });

  it("reports an empty adapter, a fan_in_fan_out disagreement and inconsistent arrays", () => {
    expect(checkCompatibility({ baseModel: null, fanInFanOut: false, modules: new Map() }, manifest).errors).toEqual(["adapter has no modules"]);
    const a = randomLoraAdapter(rng, [{ module: "model.layers.0.self_attn.q_proj", rank: 2, inFeatures: 16, outFeatures: 16 }], { fanInFanOut: true });
    expect(checkCompatibility(a, manifest).errors).toEqual([
      'module "model.layers.0.self_attn.q_proj": adapter has fan_in_fan_out=true but model "tiny" stores this weight [out, in] (fan_in_fan_out=false)',
    ]);
    a.fanInFanOut = false;
    a.modules.get("model.layers.0.self_attn.q_proj")!.a = new Float32Array(3);
    expect(checkCompatibility(a, manifest).errors).toEqual([expect.stringMatching(/A has 3 values and B 32, expected 32 and 32/)]);
  });
});
