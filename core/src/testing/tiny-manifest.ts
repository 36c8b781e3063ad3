import type { ModelManifest } from "../manifest/model-manifest.js";

/**
 * The manifest of a tiny Llama-shaped test model (2 layers, hidden 16, 2 heads of 8 with 1 KV
 * head, MLP 32, byte tokenizer); each test names its id and targets and overrides what it needs.
 */
export function tinyManifest(fields: Pick<ModelManifest, "id" | "targets"> & Partial<ModelManifest>): ModelManifest {
  return {
    architecture: "llama",
    dtype: "float32",
    vocabSize: 258,
    contextLength: 128,
    hiddenSize: 16,
    numLayers: 2,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 8,
    intermediateSize: 32,
    parameters: 10_000,
    tokenizer: { kind: "byte", bosId: 256, eosId: 257 },
    maxRank: 16,
    ...fields,
  };
}
