export type * from "./types.js";
export { loadModel } from "./load-model.js";
export { readModelDir, writeModelDir, MANIFEST_FILE, GRAPH_SPEC_FILE, type ModelFiles } from "./model-dir.js";
export type { GraphSpec, TargetBinding } from "./graph-spec.js";
