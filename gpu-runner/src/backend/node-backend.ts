import * as ort from "onnxruntime-node";
import type { Backend } from "./backend.js";
import { ortBackend, type OrtModule } from "./ort-session.js";

/** onnxruntime-node: CPU EP by default; "cuda" or "webgpu" when the host has them. */
export function createNodeBackend(): Backend {
  return ortBackend("node", ort as unknown as OrtModule, (options) => {
    const ep = options.executionProvider ?? "cpu";
    return ep === "cpu" ? ["cpu"] : [ep, "cpu"];
  });
}
