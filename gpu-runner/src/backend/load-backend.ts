import type { Backend, BackendName } from "./backend.js";

const cache = new Map<BackendName, Promise<Backend>>();

/** The backend of that name; its onnxruntime package is imported on first use only. */
export function loadBackend(name: BackendName): Promise<Backend> {
  let backend = cache.get(name);
  if (!backend) {
    switch (name) {
      case "node":
        backend = import("./node-backend.js").then((m) => m.createNodeBackend());
        break;
      case "web":
        backend = import("./web-backend.js").then((m) => m.createWebBackend());
        break;
      default:
        throw new Error(`unknown backend ${String(name)}: expected "node" or "web"`);
    }
    cache.set(name, backend);
  }
  return backend;
}
