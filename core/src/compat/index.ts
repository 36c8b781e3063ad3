export { checkCompatibility, assertCompatible } from "./check-compatibility.js";
export type { CompatibilityOptions, CompatibilityReport } from "./check-compatibility.js";
