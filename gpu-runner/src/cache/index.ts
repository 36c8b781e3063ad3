export { LeasedLru } from "./leased-lru.js";
export type { Lease, LeasedLruEntryInfo, LeasedLruOptions, LeasedLruStats } from "./leased-lru.js";
export { FloatBufferPool } from "./float-buffer-pool.js";
export type { FloatBufferPoolStats } from "./float-buffer-pool.js";
