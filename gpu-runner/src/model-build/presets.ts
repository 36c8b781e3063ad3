import { BYTE_BOS_ID, BYTE_EOS_ID, BYTE_VOCAB_SIZE } from "../tokenizer/index.js";
import type { LlamaConfig } from "./llama-config.js";

export interface ModelPreset {
  id: string;
  description: string;
  seed: number;
  config: LlamaConfig;
  /** Largest adapter rank accepted (manifest maxRank). */
  maxRank: number;
  tokenizer: { kind: "byte"; bosId: number; eosId: number };
}

const byteTokenizer = { kind: "byte", bosId: BYTE_BOS_ID, eosId: BYTE_EOS_ID } as const;

/** Built-in models, generated deterministically from their seed. */
export const MODEL_PRESETS = {
  "loraedge-tiny": {
    id: "loraedge-tiny",
    description: "2 layers, d 64, 4 heads / 2 KV heads (GQA), byte tokenizer: the default model and the test model",
    seed: 1234,
    maxRank: 64,
    tokenizer: byteTokenizer,
    config: {
      vocabSize: BYTE_VOCAB_SIZE,
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      intermediateSize: 176,
      contextLength: 512,
      ropeTheta: 10000,
      rmsNormEps: 1e-5,
      tieWordEmbeddings: false,
    },
  },
  "loraedge-small": {
    id: "loraedge-small",
    description: "≈104M parameters: 12 layers, d 768, 12 heads / 4 KV heads (GQA), SwiGLU 3072, byte tokenizer: the benchmark model",
    seed: 5678,
    maxRank: 128,
    tokenizer: byteTokenizer,
    config: {
      vocabSize: BYTE_VOCAB_SIZE,
      hiddenSize: 768,
      numLayers: 12,
      numHeads: 12,
      numKvHeads: 4,
      headDim: 64,
      intermediateSize: 3072,
      contextLength: 2048,
      ropeTheta: 10000,
      rmsNormEps: 1e-5,
      tieWordEmbeddings: false,
    },
  },
} as const satisfies Record<string, ModelPreset>;

export type ModelPresetId = keyof typeof MODEL_PRESETS;

export function isPresetId(id: string): id is ModelPresetId {
  return Object.hasOwn(MODEL_PRESETS, id);
}
