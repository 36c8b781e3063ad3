/**
 * In-memory LoRA adapters and composed mixes: the types shared by the edge (validation,
 * baking) and the runner (serving). Matrices are row-major Float32Array; an adapter's own factors
 * may instead be the file's 16-bit values kept as they are (`LoraAdapter<LoraFactor>`: `HalfFactor`,
 * see `factor.ts`), which only code that accepts them (`composeMix`, the writers, ΔW) is handed.
 *
 * Semantics (one module): y = W·x + scale·B·(A·x), i.e. ΔW = scale·B·A  [out, in].
 */
import type { LoraFactor } from "./factor.js";

/** `F`: the factors' type — Float32Array, or `LoraFactor` where 16-bit factors may appear. */
export interface LoraModule<F extends LoraFactor = Float32Array> {
  /** PEFT module path, e.g. "model.layers.0.self_attn.q_proj". */
  module: string;
  /** r: rows of A, columns of B. */
  rank: number;
  inFeatures: number;
  outFeatures: number;
  /** s = lora_alpha / r, or lora_alpha / √r with use_rslora (after rank/alpha patterns). */
  scale: number;
  /** lora_A  [rank, inFeatures] */
  a: F;
  /** lora_B  [outFeatures, rank] */
  b: F;
}

export interface LoraAdapter<F extends LoraFactor = Float32Array> {
  /** `base_model_name_or_path` from the config, when present. */
  baseModel: string | null;
  /** PEFT `fan_in_fan_out`: the base layer stores W as [in, out] (GPT-2 Conv1D). A/B shapes are unaffected. */
  fanInFanOut: boolean;
  /** Keyed by module path. */
  modules: Map<string, LoraModule<F>>;
}

/** One term of a weighted mix ΔW = Σ wᵢ·sᵢ·Bᵢ·Aᵢ. */
export interface MixTerm<F extends LoraFactor = Float32Array> {
  adapter: LoraAdapter<F>;
  /** Any finite number; 0 contributes nothing, negative subtracts. */
  weight: number;
}

/**
 * One module of a composed mix, in the layout the runner feeds to ONNX:
 * y = x·Wᵀ + (x·at)·bt  with at = A′ᵀ and bt = B′ᵀ.
 */
export interface ComposedModule {
  module: string;
  /** R = Σ rᵢ over the terms that touch this module (terms with weight 0 are dropped). */
  rank: number;
  inFeatures: number;
  outFeatures: number;
  /** Aᵗ  [inFeatures, R]  (columns are wᵢ·sᵢ·rows of Aᵢ) */
  at: Float32Array;
  /** Bᵗ  [R, outFeatures] (rows are columns of Bᵢ) */
  bt: Float32Array;
}

export interface ComposedMix {
  /** Keyed by module path; modules no term touches are absent (ΔW = 0 there). */
  modules: Map<string, ComposedModule>;
  /** Largest R over modules (0 for an empty mix). */
  maxRank: number;
  /**
   * Set by `composeMix` when asked for a bound (`options.bound`) and every value of every module's
   * at/bt was verified as composed to satisfy |v| ≤ this (NaN and ±Inf never do); absent otherwise
   * (not asked, not verified on that path, or a value beyond it). The arrays must not change after.
   */
  verifiedBound?: number;
}
