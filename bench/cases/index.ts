import type { BenchCase } from "../lib/case.js";
import { mergedVsBase } from "./merged-vs-base.js";
import { unmergedOverhead } from "./unmerged-overhead.js";
import { heterogeneousBatching } from "./heterogeneous-batching.js";
import { mergeCost } from "./merge-cost.js";
import { backends } from "./backends.js";
import { adapterColdLoad } from "./adapter-cold-load.js";
import { naiveWay } from "./naive-way.js";
import { scalingCurve } from "./scaling-curve.js";
import { edgeOverhead } from "./edge-overhead.js";
import { loraTax } from "./lora-tax.js";

/** Every case in report order. */
export const allCases: BenchCase[] = [mergedVsBase, unmergedOverhead, heterogeneousBatching, naiveWay, mergeCost, adapterColdLoad, backends, edgeOverhead, scalingCurve, loraTax];
