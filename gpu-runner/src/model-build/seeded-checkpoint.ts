import { createRng, deriveSeed } from "#core/random/index";
import type { LlamaCheckpoint, NamedTensor } from "./checkpoint.js";
import { llamaTensorShapes, type LlamaConfig } from "./llama-config.js";

/**
 * A random Llama checkpoint, fully determined by (config, seed): each tensor draws from its own
 * stream seeded by hash(seed, name), so the bytes do not depend on iteration order.
 * Linear weights ~ U(-a, a) with std 1/√in; biases std 0.1; norm weights 1 + U(-0.1, 0.1); embeddings std 1.
 */
export function seededLlamaCheckpoint(config: LlamaConfig, seed: number): LlamaCheckpoint {
  const tensors = new Map<string, NamedTensor>();
  for (const [name, shape] of llamaTensorShapes(config)) {
    const rng = createRng(deriveSeed(seed, name));
    const rand = () => rng.nextFloat();
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith("norm.weight")) {
      for (let i = 0; i < n; i++) data[i] = 1 + (rand() * 2 - 1) * 0.1;
    } else {
      const std = name === "model.embed_tokens.weight" ? 1 : name.endsWith(".bias") ? 0.1 : 1 / Math.sqrt(shape[1]);
      const a = std * Math.sqrt(3);
      for (let i = 0; i < n; i++) data[i] = (rand() * 2 - 1) * a;
    }
    tensors.set(name, { shape, data });
  }
  return { config, tensors };
}
