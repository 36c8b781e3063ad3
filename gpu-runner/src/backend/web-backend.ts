import * as ort from "onnxruntime-web";
import type { Backend } from "./backend.js";
import { ortBackend, type OrtModule } from "./ort-session.js";

let threadsFixed = false;

/**
 * onnxruntime-web with the wasm EP (runs in Node and in browsers). The wasm thread count is
 * process-wide and fixed when the first session is created: the first `threads` asked wins.
 */
export function createWebBackend(): Backend {
  const inner = ortBackend("web", ort as unknown as OrtModule, () => ["wasm"]);
  return {
    name: "web",
    createSession(model, options = {}) {
      if (!threadsFixed) {
        if (options.threads) ort.env.wasm.numThreads = options.threads;
        threadsFixed = true;
      }
      return inner.createSession(model, options);
    },
  };
}
