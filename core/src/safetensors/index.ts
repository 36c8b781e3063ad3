export { readSafetensors, DEFAULT_MAX_HEADER_BYTES } from "./read-safetensors.js";
export type { SafetensorsFile, SafetensorsTensor, ReadSafetensorsOptions } from "./read-safetensors.js";
export { writeSafetensors } from "./write-safetensors.js";
export type { TensorToWrite } from "./write-safetensors.js";
export { tensorToFloat32, tensorToFloat32Checked, IS_LITTLE_ENDIAN_HOST } from "./tensor-to-float32.js";
export { DTYPE_BYTES, SUPPORTED_DTYPES, isSupportedDtype } from "./dtypes.js";
export type { SafetensorsDtype } from "./dtypes.js";
export { findDuplicateJsonKey } from "./duplicate-keys.js";
