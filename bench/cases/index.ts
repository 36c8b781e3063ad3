import type { BenchCase } from "../lib/case.js";
import { mergedVsBase } from "./merged-vs-base.js";
import { unmergedOverhead } from "./unmerged-overhead.js";
import { heterogeneousBatching } from "./heterogeneous-batching.js";
import { mergeCost } from "./merge-cost.js";
import { backends } from "./backends.js";

/** Every case in report order. */
export const allCases: BenchCase[] = [mergedVsBase, unmergedOverhead, heterogeneousBatching, mergeCost, backends];
