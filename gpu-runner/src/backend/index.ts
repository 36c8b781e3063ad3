export * from "./backend.js";
export { loadBackend } from "./load-backend.js";
