/**
 * How far a baked adapter is from the exact mix it approximates, measured on the model itself.
 *
 * Semantics: for every position p of every probe sequence, P_p = softmax(logits of the model with
 * the exact mix) and Q_p = softmax(logits with the baked adapter);
 *   KL(P_p‖Q_p) = Σ_v P_p(v)·(log P_p(v) − log Q_p(v))   (nats, float64),
 *   agree_p = [argmax P_p = argmax Q_p];
 * reported as the mean and max KL over positions and the share of agreeing positions.
 */
import type { ComposedMix } from "#core/lora/types";
import type { BakeFidelity } from "#core/wire/bake";
import type { BaseModel, ModelVariant } from "../model/types.js";
import type { ProbeSetSpec } from "./probe-set.js";
import { probeSequences } from "./probe-set.js";

/** log-softmax of one row of logits, in float64. */
export function logSoftmax(logits: Float32Array, offset: number, vocab: number): Float64Array {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[offset + v]);
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(logits[offset + v] - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(vocab);
  for (let v = 0; v < vocab; v++) out[v] = logits[offset + v] - logZ;
  return out;
}

function argmax(xs: Float64Array): number {
  let best = 0;
  for (let v = 1; v < xs.length; v++) if (xs[v] > xs[best]) best = v;
  return best;
}

/** KL(P‖Q) from log-probabilities; clamped at 0 (rounding can make it −1e-17). */
export function klDivergence(logP: Float64Array, logQ: Float64Array): number {
  let kl = 0;
  for (let v = 0; v < logP.length; v++) {
    const p = Math.exp(logP[v]);
    if (p > 0) kl += p * (logP[v] - logQ[v]);
  }
  return Math.max(0, kl);
}

/** Scores logits [positions, vocab] of the exact mix against the baked adapter's. */
export function compareLogits(exact: Float32Array, baked: Float32Array, vocab: number): { kl: number[]; agree: boolean[] } {
  if (exact.length !== baked.length || exact.length % vocab !== 0) throw new Error("logits of the exact and baked runs differ in shape");
  const kl: number[] = [];
  const agree: boolean[] = [];
  for (let off = 0; off < exact.length; off += vocab) {
    const logP = logSoftmax(exact, off, vocab);
    const logQ = logSoftmax(baked, off, vocab);
    kl.push(klDivergence(logP, logQ));
    agree.push(argmax(logP) === argmax(logQ));
  }
  return { kl, agree };
}

/** A forward that serves one mix: the base model with per-row LoRA inputs, or a merged session. */
interface MixRunner {
  run(tokens: readonly number[]): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** Mixes touching merge-only targets run on a merged session of their own; others on the base model's LoRA inputs. */
async function mixRunner(model: BaseModel, mix: ComposedMix): Promise<MixRunner> {
  const mergeOnly = new Set(model.manifest.targets.filter((t) => t.mode === "merge-only").map((t) => t.module));
  const needsMerge = [...mix.modules.keys()].some((m) => mergeOnly.has(m));
  const variant: ModelVariant = needsMerge ? await model.createMerged(mix) : model;
  const rowMix = needsMerge ? null : mix;
  return {
    async run(tokens) {
      const [row] = await variant.step([{ tokens, cache: null, mix: rowMix }], { allLogits: true });
      return row.logits;
    },
    dispose: async () => {
      if (variant !== model) await variant.dispose();
    },
  };
}

/**
 * Fidelity of `baked` against `exact` on the probe set. One probe sequence per step (two rows'
 * worth of work at a time), so a bake never holds the model for long while it serves traffic.
 */
export async function measureFidelity(model: BaseModel, exact: ComposedMix, baked: ComposedMix, probe: ProbeSetSpec): Promise<BakeFidelity> {
  const { vocabSize, contextLength } = model.manifest;
  const sequences = probeSequences(probe, vocabSize, contextLength);
  const exactRunner = await mixRunner(model, exact);
  let bakedRunner: MixRunner | null = null;
  try {
    bakedRunner = await mixRunner(model, baked);
    const kl: number[] = [];
    let agreeing = 0;
    for (const tokens of sequences) {
      const [p, q] = await Promise.all([exactRunner.run(tokens), bakedRunner.run(tokens)]);
      const scored = compareLogits(p, q, vocabSize);
      kl.push(...scored.kl);
      agreeing += scored.agree.filter(Boolean).length;
    }
    return {
      probe: { sequences: sequences.length, tokens_per_sequence: sequences[0].length, seed: probe.seed },
      positions: kl.length,
      kl_mean: kl.reduce((s, x) => s + x, 0) / kl.length,
      kl_max: Math.max(...kl),
      top1_agreement: agreeing / kl.length,
    };
  } finally {
    await exactRunner.dispose();
    await bakedRunner?.dispose();
  }
}
