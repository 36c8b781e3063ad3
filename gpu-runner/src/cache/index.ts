export { LeasedLru } from "./leased-lru.js";
export type { Lease, LeasedLruEntryInfo, LeasedLruOptions, LeasedLruStats } from "./leased-lru.js";
