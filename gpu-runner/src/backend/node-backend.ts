import * as ort from "onnxruntime-node";
import type { Backend } from "./backend.js";
import { ortBackend, type OrtModule } from "./ort-session.js";

/** Execution providers onnxruntime-node can be asked for (availability depends on the host build). */
export const NODE_EXECUTION_PROVIDERS = ["cpu", "cuda", "webgpu", "tensorrt", "dml", "coreml"] as const;

/** onnxruntime-node: CPU EP by default; "cuda" or "webgpu" when the host has them (CPU stays as fallback for unsupported ops). */
export function createNodeBackend(): Backend {
  return ortBackend("node", ort as unknown as OrtModule, (options) => {
    const ep = options.executionProvider ?? "cpu";
    if (!(NODE_EXECUTION_PROVIDERS as readonly string[]).includes(ep)) {
      // ORT would silently drop an unknown name and run on CPU: refuse instead.
      throw new Error(`unknown execution provider "${ep}" (expected one of ${NODE_EXECUTION_PROVIDERS.join(", ")})`);
    }
    return ep === "cpu" ? ["cpu"] : [ep, "cpu"];
  }, true);
}
