export { bake, BakeError } from "./bake.js";
export type { BakeOptions, BakeResult, BakeReport, BakeModuleReport } from "./bake.js";
export { MERGE_STRATEGIES, STRATEGY_NAMES, isStrategyName } from "./strategies.js";
export type { StrategyName, MergeStrategy, LowRankStrategy, DenseStrategy, DenseMergeContext } from "./strategies.js";
export { trimTopK, kthLargest, keepCount, dareDrop, tiesMerge, weightedSum } from "./dense-merges.js";
