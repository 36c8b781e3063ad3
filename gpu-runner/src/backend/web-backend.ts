import * as ort from "onnxruntime-web";
import type { Backend } from "./backend.js";
import { ortBackend, type OrtModule } from "./ort-session.js";

/** onnxruntime-web with the wasm EP (runs in Node and in browsers). */
export function createWebBackend(options: { threads?: number } = {}): Backend {
  if (options.threads) ort.env.wasm.numThreads = options.threads;
  return ortBackend("web", ort as unknown as OrtModule, () => ["wasm"]);
}
