export * from "./byte-tokenizer.js";
export * from "./hf-tokenizer.js";
export * from "./chat-template.js";
