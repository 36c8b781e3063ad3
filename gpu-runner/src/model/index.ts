export type * from "./types.js";
export { MODEL_PRESETS, isPresetId, type ModelPreset, type ModelPresetId } from "./presets.js";
export { buildModel, defaultModelCacheDir, ensureModel, type BuildModelOptions } from "./build-model.js";
export { loadModel } from "./load-model.js";
export { readModelDir, writeModelDir, MANIFEST_FILE, GRAPH_SPEC_FILE, type ModelFiles } from "./model-dir.js";
export type { GraphSpec, TargetBinding } from "./graph-spec.js";
export type { LlamaConfig } from "./llama-config.js";
export type { LlamaCheckpoint, NamedTensor } from "./checkpoint.js";
export { importHfCheckpoint, readHfCheckpoint, type ImportHfOptions } from "./import-hf-checkpoint.js";
