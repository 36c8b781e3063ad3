export { readOnnxAdapter, ONNX_ADAPTER_FORMAT_VERSION, ONNX_ADAPTER_IDENTIFIER } from "./read-onnx-adapter.js";
export type { OnnxAdapterFile, OnnxAdapterParameter } from "./read-onnx-adapter.js";
export { writeOnnxAdapter } from "./write-onnx-adapter.js";
export type { OnnxAdapterToWrite, OnnxAdapterParameterToWrite } from "./write-onnx-adapter.js";
export { ONNX_ADAPTER_DTYPES, onnxAdapterDtypeFromCode } from "./tensor-data-type.js";
export type { OnnxAdapterDtype } from "./tensor-data-type.js";
export {
  peftToOnnxAdapter,
  onnxAdapterToPeft,
  onnxAdapterParameters,
  moduleToMatMulLayout,
  defaultParameterName,
  parseDefaultParameterName,
} from "./convert.js";
export type { PeftToOnnxAdapterOptions, OnnxAdapterToPeftOptions } from "./convert.js";
