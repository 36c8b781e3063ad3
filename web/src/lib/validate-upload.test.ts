import { describe, expect, it } from "vitest";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { checkUpload } from "./validate-upload.js";

const manifest: ModelManifest = {
  id: "unit-model",
  architecture: "llama",
  dtype: "float32",
  vocabSize: 10,
  contextLength: 16,
  hiddenSize: 16,
  numLayers: 1,
  numHeads: 2,
  numKvHeads: 2,
  headDim: 8,
  intermediateSize: 32,
  parameters: 1,
  tokenizer: { kind: "byte", bosId: null, eosId: null },
  maxRank: 8,
  targets: [
    { module: "model.layers.0.self_attn.q_proj", in: 16, out: 16, mode: "unmerged", fanInFanOut: false },
    { module: "model.layers.0.self_attn.v_proj", in: 16, out: 8, mode: "unmerged", fanInFanOut: false },
  ],
};

function files(rank: number, dims: Array<[string, number, number]>) {
  const adapter = randomLoraAdapter(
    createRng(3),
    dims.map(([module, inFeatures, outFeatures]) => ({ module, rank, inFeatures, outFeatures, scale: 0.5 })),
  );
  const f = writePeftAdapter(adapter, { baseModel: manifest.id });
  return { config: JSON.stringify(f.config), weights: f.safetensors };
}
const good = () => files(4, [["model.layers.0.self_attn.q_proj", 16, 16], ["model.layers.0.self_attn.v_proj", 16, 8]]);

describe("checkUpload (core's parser, in the browser)", () => {
  it("accepts a valid adapter and describes its modules", () => {
    const { config, weights } = good();
    const r = checkUpload(config, weights, manifest);
    expect(r.ok).toBe(true);
    expect(r.configErrors).toEqual([]);
    expect(r.weightsErrors).toEqual([]);
    expect(r.modules.map((m) => [m.module, m.rank, m.in, m.out])).toEqual([
      ["model.layers.0.self_attn.q_proj", 4, 16, 16],
      ["model.layers.0.self_attn.v_proj", 4, 16, 8],
    ]);
    expect(r.summary?.ranks).toEqual([4]);
  });

  it("puts a config problem beside the config and a container problem beside the weights", () => {
    const { config, weights } = good();
    const badJson = checkUpload("{not json", weights, manifest);
    expect(badJson.ok).toBe(false);
    expect(badJson.configErrors[0]).toMatch(/^not valid JSON/);
    expect(badJson.weightsErrors).toEqual([]);
    const dora = checkUpload(JSON.stringify({ ...JSON.parse(config), use_dora: true }), weights, manifest);
    expect(dora.configErrors[0]).toMatch(/^unsupported_dora:/);
    const truncated = checkUpload(config, weights.slice(0, weights.length - 3), manifest);
    expect(truncated.configErrors).toEqual([]);
    expect(truncated.weightsErrors).toHaveLength(1);
    expect(truncated.ok).toBe(false);
  });

  it("lists every mismatch with the base model: shapes, unknown modules, rank over the cap", () => {
    const wrong = files(4, [["model.layers.0.self_attn.q_proj", 17, 16], ["model.layers.0.self_attn.k_proj", 16, 8]]);
    const r = checkUpload(wrong.config, wrong.weights, manifest);
    expect(r.ok).toBe(false);
    expect(r.weightsErrors.some((e) => /q_proj.*expects 16 → 16/.test(e))).toBe(true);
    expect(r.weightsErrors.some((e) => /k_proj" is not a target/.test(e))).toBe(true);
    const big = files(16, [["model.layers.0.self_attn.q_proj", 16, 16]]);
    expect(checkUpload(big.config, big.weights, manifest).weightsErrors.join("\n")).toMatch(/rank 16 exceeds the maximum rank 8/);
  });
});
