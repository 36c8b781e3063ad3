export * from "./api-error.js";
export * from "./error-schema.js";
export * from "./on-error.js";
export * from "./validation-hook.js";
