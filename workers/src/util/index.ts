export * from "./crypto.js";
export * from "./time.js";
