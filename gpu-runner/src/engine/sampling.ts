/**
 * Next-token selection from one row's logits.
 *
 * Semantics:
 *   temperature = 0            → argmax(logits) (lowest id wins ties)
 *   otherwise  p = softmax(logits / temperature); keep the top_k most probable tokens
 *              (top_k = 0: all), then the smallest prefix of them, by descending p, whose
 *              mass is ≥ top_p; renormalise; draw u ~ U[0,1) from the row's seeded RNG and
 *              return the first token whose cumulative p exceeds u·Σp.
 * Logprobs reported to clients are log_softmax of the raw logits (before temperature/top-k/top-p).
 */
import type { Rng } from "../../../core/src/random/index.js";

export interface SamplingParams {
  temperature: number;
  topP: number;
  /** 0 disables. */
  topK: number;
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** log_softmax(logits)  [vocab], in float64 for stable sums. */
export function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - logZ;
  return out;
}

/** Token ids of the `k` largest entries, by descending value (lowest id first on ties). */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  const ids = Array.from({ length: values.length }, (_, i) => i);
  ids.sort((a, b) => values[b]! - values[a]! || a - b);
  return ids.slice(0, Math.max(0, k));
}

export function sampleToken(logits: Float32Array, params: SamplingParams, rng: Rng): number {
  if (params.temperature === 0) return argmax(logits);
  const vocab = logits.length;
  const scaled = new Float64Array(vocab);
  let max = -Infinity;
  for (let i = 0; i < vocab; i++) {
    scaled[i] = logits[i]! / params.temperature;
    if (scaled[i]! > max) max = scaled[i]!;
  }
  let total = 0;
  for (let i = 0; i < vocab; i++) {
    scaled[i] = Math.exp(scaled[i]! - max);
    total += scaled[i]!;
  }
  // Candidates by descending probability (only needed when a filter is active).
  let candidates: number[];
  if (params.topK > 0 || params.topP < 1) {
    candidates = topIndices(scaled, params.topK > 0 ? Math.min(params.topK, vocab) : vocab);
    if (params.topP < 1) {
      let mass = 0;
      let keep = 0;
      while (keep < candidates.length) {
        mass += scaled[candidates[keep]!]! / total;
        keep++;
        if (mass >= params.topP) break;
      }
      candidates = candidates.slice(0, keep);
    }
  } else {
    candidates = Array.from({ length: vocab }, (_, i) => i);
  }
  let kept = 0;
  for (const id of candidates) kept += scaled[id]!;
  const target = rng.nextFloat() * kept;
  let cumulative = 0;
  for (const id of candidates) {
    cumulative += scaled[id]!;
    if (cumulative > target) return id;
  }
  return candidates[candidates.length - 1]!;
}
