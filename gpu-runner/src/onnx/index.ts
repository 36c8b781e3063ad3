export * from "./onnx-proto.js";
export * from "./graph-builder.js";
