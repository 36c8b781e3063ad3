/**
 * Test support (imported by tests only): the KV cache against a full recompute.
 */
import type { ModelVariant } from "../types.js";
import { relErr } from "./random-mix.js";

/**
 * Prefills `tokens[0..4)` (beside an unrelated row), then decodes `tokens[4..]` one per step, each
 * step batched beside an unrelated 5-token prefill row, and returns per decoded position i its
 * logits' relative error against row i of `fullLogits` (one prefill of all `tokens`, `allLogits`).
 */
export async function cachedDecodeErrors(model: ModelVariant, tokens: readonly number[], fullLogits: Float32Array, vocabSize: number): Promise<Array<{ position: number; error: number }>> {
  let cache = (await model.step([{ tokens: tokens.slice(0, 4), cache: null, mix: null }, { tokens: [1, 2], cache: null, mix: null }]))[0].cache;
  const errors: Array<{ position: number; error: number }> = [];
  for (let i = 4; i < tokens.length; i++) {
    const out = await model.step([
      { tokens: [3, 4, 5, 6, 7], cache: null, mix: null },
      { tokens: [tokens[i]], cache, mix: null },
    ]);
    cache = out[1].cache;
    errors.push({ position: i, error: relErr(out[1].logits, fullLogits.slice(i * vocabSize, (i + 1) * vocabSize)) });
  }
  return errors;
}
