export * from "./onnx-proto.js";
export * from "./graph-builder.js";
export * from "./float16.js";
