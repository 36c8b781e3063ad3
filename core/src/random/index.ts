export { createRng, createRngFromState, deriveSeed } from "./xoshiro128.js";
export type { Rng } from "./xoshiro128.js";
export { randomLoraAdapter, randomUniform } from "./random-adapter.js";
export type { RandomModuleSpec } from "./random-adapter.js";
