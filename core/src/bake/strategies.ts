/**
 * Offline merge strategies as small objects in a registry keyed by name (LoRAX-style).
 * Every strategy acts on the per-module deltas ΔWᵢ = sᵢ·Bᵢ·Aᵢ (never on A and B separately,
 * see docs/lora-math.md), and `bake` truncates the merged ΔW back to a low rank by SVD.
 */
import type { Rng } from "../random/index.js";
import { dareDrop, tiesMerge, trimTopK, weightedSum } from "./dense-merges.js";

export type StrategyName = "linear" | "ties" | "dare_linear" | "dare_ties" | "magnitude_prune" | "svd";

/** What a dense strategy gets for one module. */
export interface DenseMergeContext {
  /** In (0, 1]. */
  density: number;
  /** A reproducible RNG stream for term i of this module (seed, module name, term index). */
  rngForTerm(termIndex: number): Rng;
}

interface StrategyBase {
  readonly name: StrategyName;
  /** Whether `density` is required (and allowed). */
  readonly usesDensity: boolean;
  /** Whether `seed` is allowed. */
  readonly usesSeed: boolean;
  /** Output rank per module when `rank` is not given, from the ranks of the terms touching it. */
  defaultRank(termRanks: readonly number[]): number;
  /** One line for docs and error messages. */
  readonly description: string;
}

/** The merged ΔW is the linear mix Σ wᵢ·ΔWᵢ = B′A′: SVD from the factors, never dense. */
export interface LowRankStrategy extends StrategyBase {
  readonly kind: "low-rank";
}

/** The merged ΔW needs every entry (trim, drop, sign election): dense merge then truncated SVD. */
export interface DenseStrategy extends StrategyBase {
  readonly kind: "dense";
  /**
   * Merges per-term deltas ΔWᵢ [out, in] (scale included, weight not) with their weights.
   * termIndices[i] is the position of deltas[i] in the caller's term list (for the RNG).
   */
  merge(deltas: readonly Float32Array[], weights: readonly number[], termIndices: readonly number[], ctx: DenseMergeContext): Float32Array;
}

export type MergeStrategy = LowRankStrategy | DenseStrategy;

const sumOfRanks = (ranks: readonly number[]): number => ranks.reduce((s, r) => s + r, 0);
const maxRank = (ranks: readonly number[]): number => ranks.reduce((s, r) => Math.max(s, r), 0);

const linear: LowRankStrategy = {
  name: "linear",
  kind: "low-rank",
  usesDensity: false,
  usesSeed: false,
  defaultRank: sumOfRanks,
  description: "ΔW = Σ wᵢ·ΔWᵢ, kept at rank Σ rᵢ by default (lossless)",
};

const svd: LowRankStrategy = {
  name: "svd",
  kind: "low-rank",
  usesDensity: false,
  usesSeed: false,
  defaultRank: maxRank,
  description: "ΔW = Σ wᵢ·ΔWᵢ, truncated to rank max rᵢ by default",
};

const ties: DenseStrategy = {
  name: "ties",
  kind: "dense",
  usesDensity: true,
  usesSeed: false,
  defaultRank: maxRank,
  description: "trim each ΔWᵢ to its top ⌊density·numel⌋ |·|, elect signs of Σ wᵢ·trimmedᵢ, disjoint mean",
  merge: function tiesMergeStrategy(deltas, weights, _termIndices, ctx) {
    return tiesMerge(deltas.map((d) => trimTopK(d, ctx.density)), weights);
  },
};

const dareLinear: DenseStrategy = {
  name: "dare_linear",
  kind: "dense",
  usesDensity: true,
  usesSeed: true,
  defaultRank: maxRank,
  description: "drop entries of each ΔWᵢ with probability 1−density, rescale by 1/density, weighted sum",
  merge: function dareLinearMerge(deltas, weights, termIndices, ctx) {
    return weightedSum(deltas.map((d, i) => dareDrop(d, ctx.density, ctx.rngForTerm(termIndices[i]))), weights);
  },
};

const dareTies: DenseStrategy = {
  name: "dare_ties",
  kind: "dense",
  usesDensity: true,
  usesSeed: true,
  defaultRank: maxRank,
  description: "DARE drop and rescale each ΔWᵢ, then TIES sign election and disjoint mean",
  merge: function dareTiesMerge(deltas, weights, termIndices, ctx) {
    return tiesMerge(deltas.map((d, i) => dareDrop(d, ctx.density, ctx.rngForTerm(termIndices[i]))), weights);
  },
};

const magnitudePrune: DenseStrategy = {
  name: "magnitude_prune",
  kind: "dense",
  usesDensity: true,
  usesSeed: false,
  defaultRank: maxRank,
  description: "weighted sum Σ wᵢ·ΔWᵢ, then keep its top ⌊density·numel⌋ |·|",
  merge: function magnitudePruneMerge(deltas, weights, _termIndices, ctx) {
    return trimTopK(weightedSum(deltas, weights), ctx.density);
  },
};

/** The registry. */
export const MERGE_STRATEGIES: Readonly<Record<StrategyName, MergeStrategy>> = Object.freeze({
  linear,
  ties,
  dare_linear: dareLinear,
  dare_ties: dareTies,
  magnitude_prune: magnitudePrune,
  svd,
});

export const STRATEGY_NAMES = Object.freeze(Object.keys(MERGE_STRATEGIES) as StrategyName[]);

export function isStrategyName(name: unknown): name is StrategyName {
  return typeof name === "string" && Object.hasOwn(MERGE_STRATEGIES, name);
}
