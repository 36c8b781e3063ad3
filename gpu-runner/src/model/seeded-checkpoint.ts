import type { LlamaCheckpoint, NamedTensor } from "./checkpoint.js";
import { llamaTensorShapes, type LlamaConfig } from "./llama-config.js";

/** FNV-1a 32-bit hash of a string. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: a small deterministic PRNG giving floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A random Llama checkpoint, fully determined by (config, seed): each tensor draws from its own
 * stream seeded by hash(seed, name), so the bytes do not depend on iteration order.
 * Linear weights ~ U(-a, a) with std 1/√in; norm weights 1 + U(-0.1, 0.1); embeddings std 1.
 */
export function seededLlamaCheckpoint(config: LlamaConfig, seed: number): LlamaCheckpoint {
  const tensors = new Map<string, NamedTensor>();
  for (const [name, shape] of llamaTensorShapes(config)) {
    const rand = mulberry32(fnv1a(`${seed}:${name}`));
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith("norm.weight")) {
      for (let i = 0; i < n; i++) data[i] = 1 + (rand() * 2 - 1) * 0.1;
    } else {
      const std = name === "model.embed_tokens.weight" ? 1 : 1 / Math.sqrt(shape[1]);
      const a = std * Math.sqrt(3);
      for (let i = 0; i < n; i++) data[i] = (rand() * 2 - 1) * a;
    }
    tensors.set(name, { shape, data });
  }
  return { config, tensors };
}
