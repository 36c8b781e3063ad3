import type { LlamaConfig } from "./llama-config.js";
import { llamaTensorShapes } from "./llama-config.js";

/** One float32 tensor, row-major. */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

/** A Llama checkpoint in Hugging Face naming and layout (Linear weights [out, in]). */
export interface LlamaCheckpoint {
  config: LlamaConfig;
  tensors: Map<string, NamedTensor>;
}

/** Checks every tensor the config needs is present with the right shape. */
export function validateLlamaCheckpoint(checkpoint: LlamaCheckpoint): void {
  for (const [name, shape] of llamaTensorShapes(checkpoint.config)) {
    const t = checkpoint.tensors.get(name);
    if (!t) throw new Error(`checkpoint is missing tensor ${name}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`checkpoint tensor ${name} has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`);
    }
  }
}

/** lm_head.weight [vocab, d], or the embedding when tied. */
export function lmHeadWeight(checkpoint: LlamaCheckpoint): NamedTensor {
  const t = checkpoint.tensors.get(checkpoint.config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  if (!t) throw new Error("checkpoint has no lm_head weight");
  return t;
}
