export * from "./config.js";
export * from "./enforce.js";
export * from "./rate-limit.js";
export * from "./usage.js";
