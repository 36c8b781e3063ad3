export { MODEL_PRESETS, isPresetId, type ModelPreset, type ModelPresetId } from "./presets.js";
export { buildModel, defaultModelCacheDir, ensureModel, type BuildModelOptions } from "./build-model.js";
export type { LlamaConfig } from "./llama-config.js";
export type { LlamaCheckpoint, NamedTensor } from "./checkpoint.js";
export { importHfCheckpoint, readHfCheckpoint, type ImportHfOptions } from "./import-hf-checkpoint.js";
export { importOnnxExport, type ImportOnnxOptions } from "./import-onnx-export.js";
export { EXPORT_FAMILIES, type ExportFamily, type WeightRule } from "./export-families.js";
