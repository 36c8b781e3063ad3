/**
 * Random LoRA adapters from a seed: for property tests and benchmarks in every part of the
 * project (core, runner, worker), so they all draw the same adapters from the same seed.
 */
import type { LoraAdapter, LoraModule } from "../lora/types.js";
import type { Rng } from "./xoshiro128.js";

/** Shape of one module of a random adapter. */
export interface RandomModuleSpec {
  module: string;
  rank: number;
  inFeatures: number;
  outFeatures: number;
  /** Default 1. */
  scale?: number;
}

/**
 * Fills a new Float32Array with values uniform on [−amplitude, amplitude).
 * Semantics: x[j] = fp32((2·u_j − 1)·amplitude), u_j = rng.nextFloat() in order.
 */
export function randomUniform(rng: Rng, length: number, amplitude = 1): Float32Array {
  const x = new Float32Array(length);
  for (let j = 0; j < length; j++) x[j] = (2 * rng.nextFloat() - 1) * amplitude;
  return x;
}

/**
 * A random adapter: per module, A [rank, in] and B [out, rank] uniform on [−1, 1)
 * (A first, then B, modules in the given order).
 */
export function randomLoraAdapter(
  rng: Rng,
  specs: readonly RandomModuleSpec[],
  opts: { baseModel?: string | null; fanInFanOut?: boolean } = {},
): LoraAdapter {
  const modules = new Map<string, LoraModule>();
  for (const s of specs) {
    const a = randomUniform(rng, s.rank * s.inFeatures); // [rank, in]
    const b = randomUniform(rng, s.outFeatures * s.rank); // [out, rank]
    modules.set(s.module, {
      module: s.module,
      rank: s.rank,
      inFeatures: s.inFeatures,
      outFeatures: s.outFeatures,
      scale: s.scale ?? 1,
      a,
      b,
    });
  }
  return { baseModel: opts.baseModel ?? null, fanInFanOut: opts.fanInFanOut ?? false, modules };
}
