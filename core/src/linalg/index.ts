export { matmul, matmulTransA, transpose, frobeniusSquared, relativeError } from "./matmul.js";
export type { Dense } from "./matmul.js";
