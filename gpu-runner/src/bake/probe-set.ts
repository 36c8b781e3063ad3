/**
 * The fixed probe set a bake's fidelity is measured on: `sequences` rows of `tokens` token ids
 * drawn uniformly from the vocabulary with core's seeded xoshiro128** (same seed ⇒ same probes,
 * so two bakes of one model are measured on the same inputs). Random ids rather than text: the
 * runner serves any model, and a baked adapter must match the exact mix everywhere, not only on
 * likely text.
 */
import { createRng } from "#core/random/index";

export interface ProbeSetSpec {
  sequences: number;
  tokens: number;
  seed: number;
}

export const DEFAULT_PROBE_SET: ProbeSetSpec = { sequences: 8, tokens: 32, seed: 0x10ae };

/** [sequences][tokens] ids in [0, vocabSize); `tokens` is capped by the context length. */
export function probeSequences(spec: ProbeSetSpec, vocabSize: number, contextLength: number): number[][] {
  const tokens = Math.max(1, Math.min(spec.tokens, contextLength));
  const rng = createRng(spec.seed);
  return Array.from({ length: spec.sequences }, () => Array.from({ length: tokens }, () => rng.nextUint32() % vocabSize));
}
