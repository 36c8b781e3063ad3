/**
 * Public barrel of `core`: pure TypeScript shared by the edge worker and the GPU runner.
 * (Other engineers append their export lines below; keep one line per module folder.)
 */
export * from "./errors.js";
export * from "./dtype/index.js";
export * from "./safetensors/index.js";
export type { LoraAdapter, LoraModule, MixTerm, ComposedModule, ComposedMix } from "./lora/types.js";
export { adapterAsFloat32, HalfFactor, factorValues, widenFactorInto, firstNonFiniteHalf } from "./lora/factor.js";
export type { HalfDtype, LoraFactor, WidenOptions } from "./lora/factor.js";
export * from "./peft/index.js";
export * from "./compat/index.js";
export * from "./compose/index.js";
export * from "./bake/index.js";
export { deltaWeight, mergeWeight } from "./lora/delta.js";
export type { DeltaOptions } from "./lora/delta.js";
export * from "./linalg/index.js";
export * from "./random/index.js";
export * from "./onnx-adapter/index.js";
export * from "./chat/index.js";
export * from "./simd/index.js";
