export * from "./log.js";
export * from "./request-id.js";
