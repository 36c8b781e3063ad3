export * from "./llama-reference.js";
