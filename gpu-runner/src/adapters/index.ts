export { AdapterCache, adapterBytes, sha256Hex } from "./adapter-cache.js";
export type { AdapterCacheOptions, AdapterLease, AdapterParser, AdapterCacheEntryInfo, AdapterCacheStats } from "./adapter-cache.js";
export { EdgeAdapterSource } from "./edge-source.js";
export type { AdapterFiles, AdapterSource, EdgeSourceOptions } from "./edge-source.js";
export { joinChunks, leadingBytes, plainTarget, safetensorsTarget } from "./receive-bytes.js";
export type { ReceiveTarget } from "./receive-bytes.js";
export { parseAdapter } from "./parse-adapter.js";
