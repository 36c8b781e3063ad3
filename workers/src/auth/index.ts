export * from "./bearer.js";
export * from "./require-admin.js";
export * from "./require-runner.js";
export * from "./require-tenant.js";
